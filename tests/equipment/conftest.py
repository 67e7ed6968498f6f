import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 costs ~0.2 s a user and `world` makes thirteen; MD5 keeps these tests fast.
    Password checks still go through Django's real hasher machinery."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
