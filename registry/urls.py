"""URLs: the API under /api/v1/, its schema and docs, the OTP-protected admin, and the health
checks (/healthz, /readyz)."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from directory.api.log import WellKnownApi
from directory.federation.views import WellKnownFederationApi
from directory.pages import views as pages
from registry import health, metrics
from registry.admin import admin_site
from registry.api.schema import SchemaApi
from registry.portal.views import public

urlpatterns = [
    # The read side first: the lookup is the most frequent request, resolved in fewer steps.
    path("api/v1/", include("directory.api.urls")),
    path("api/v1/", include("registry.api.urls")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file (no inline script); Swagger UI
    # sets inline styles, so this page alone allows them.
    path(
        "api/docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path(".well-known/vault-registry", WellKnownApi.as_view(), name="well-known"),
    path(
        ".well-known/vault-federation",
        WellKnownFederationApi.as_view(),
        name="well-known-federation",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin_site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("portal/", include("registry.portal.urls")),
    path("apply/provider/", public.apply, {"kind": "provider"}, name="apply-provider"),
    path("apply/issuer/", public.apply, {"kind": "issuer"}, name="apply-issuer"),
    path("apply/status/<str:token>/", public.application_status, name="application-status"),
    path("check/", pages.number_check, name="check"),
    path("transparency/", pages.transparency, name="transparency"),
    path("status/", pages.status, name="status"),
    path("favicon.ico", public.favicon, name="favicon"),
    path("", public.home, name="home"),
]

handler400 = "registry.api.handlers.bad_request"
handler403 = "registry.api.handlers.permission_denied"
handler404 = "registry.api.handlers.page_not_found"
handler500 = "registry.api.handlers.server_error"
