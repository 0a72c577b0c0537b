"""Service configuration, in the spirit of a CLAM service's settings file."""

SYSTEM_ID = 'yourwebservice'
SYSTEM_NAME = 'Your Web Service'
SYSTEM_VERSION = '1.0'

# HTTP Basic authentication: user -> sha256 of the password. CLAM can do the
# authentication itself only when Apache passes the Authorization header on
# (WSGIPassAuthorization On). The sample's password is "changeme".
USERS = {
    'alice': '057ba03d6c44104863dc7361fe4578965d1887360f90a0895882e58a6248fc86',
}
