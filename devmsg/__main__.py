from devmsg.cli import app

app(prog_name="devmsg")
