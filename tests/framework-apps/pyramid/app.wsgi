"""Entry point of the Pyramid test app (see ../README.md): PasteDeploy
builds it from production.ini, as Pyramid projects are deployed."""
import os

from paste.deploy import loadapp

application = loadapp('config:' + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'production.ini'))
