"""devmsg for a Django project: add these to settings.py (pip install 'devmsg[django]').

Every mail the project sends (send_mail, send_mass_mail, mail_admins, EmailMessage,
EmailMultiAlternatives) is then stored in devmsg's record; run `devmsg worker` (or
`devmsg resend-failed` from cron) with the same devmsg.toml to deliver it."""

EMAIL_BACKEND = "devmsg.django.EmailBackend"

# The devmsg.toml to use; without it, $DEVMSG_CONFIG, then ./devmsg.toml.
DEVMSG_CONFIG = "/srv/app/devmsg.toml"

# True (the default): store, and the worker delivers. False: deliver in the call.
DEVMSG_QUEUE = True

# Every message's type (devmsg list --type django); a message sets its own with the header
# X-Devmsg-Type, which is removed before storing:
#   EmailMessage(..., headers={"X-Devmsg-Type": "receipt"})
DEVMSG_TYPE = "django"
