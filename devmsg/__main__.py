from devmsg.cli import run

run()
