"""RelengAPI settings, read by create_app() from $RELENGAPI_SETTINGS.

Replace the token before deploying: anyone holding it acts as its user.
"""

# Token -> who it authenticates and what it may do. The real RelengAPI keeps
# tokens in its database; a table is enough for this sample.
RELENGAPI_TOKENS = {
    'sample-token-change-me': {
        'user': 'ci-bot@example.org',
        'permissions': ['base.tokens.view', 'tooltool.download.public'],
    },
}
