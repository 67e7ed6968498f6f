from rest_framework import authentication, exceptions

from core.models import ApiToken, hash_secret
from core.services import note_api_token_use


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer fbp_…` with a personal API token."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.") from None
        token = (
            ApiToken.objects.active()
            .select_related("user")
            .filter(token_hash=hash_secret(secret))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        note_api_token_use(token)
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
