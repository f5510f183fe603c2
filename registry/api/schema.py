"""drf-spectacular extensions (how the bearer tokens appear in the OpenAPI schema), and the
view serving the schema. The operations' schema class is ``registry.api.openapi``."""

from django.http import JsonResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView

from registry.api.errors import PROBLEM_CONTENT_TYPE


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "registry.api.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API token created by a federation admin: scope `provider` for provider "
                "self-service, scope `lookup` for issuers' lookups."
            ),
        }


class PeerSignatureScheme(OpenApiAuthenticationExtension):
    """A member registry's request, signed with RFC 9421 HTTP Message Signatures."""

    target_class = "directory.api.plans.PeerSignatureAuthentication"
    name = "peerSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Signature",
            "description": "RFC 9421 signature of a member registry (keys from the federation "
            "document); Signature-Input names the covered components",
        }


class SchemaApi(SpectacularAPIView):
    """The OpenAPI document (YAML or JSON); its errors are problem+json like the API's.

    drf-spectacular renders whatever the view answers with the negotiated renderer, so a 401 or
    406 came back as YAML under a problem+json content type: errors skip the renderers here.
    """

    def handle_exception(self, exc):
        answer = super().handle_exception(exc)  # the API's exception handler: problem+json data
        response = JsonResponse(
            answer.data,
            status=answer.status_code,
            content_type=PROBLEM_CONTENT_TYPE,
            json_dumps_params={"ensure_ascii": False},
        )
        for name, value in answer.items():
            if name.lower() != "content-type":
                response[name] = value
        return response
