"""URLs: the API under /api/v1/, its schema and docs, the OTP-protected admin, and the health
checks (/healthz, /readyz)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from directory.api.log import WellKnownApi
from directory.federation.views import WellKnownFederationApi
from registry import health, metrics
from registry.admin import admin_site
from registry.api import handlers
from registry.api.schema import SchemaApi

urlpatterns = [
    # The read side first: the lookup is the most frequent request, resolved in fewer steps.
    path("api/v1/", include("directory.api.urls")),
    path("api/v1/", include("registry.api.urls")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
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
    path("", handlers.home, name="home"),
]

handler400 = "registry.api.handlers.bad_request"
handler403 = "registry.api.handlers.permission_denied"
handler404 = "registry.api.handlers.page_not_found"
handler500 = "registry.api.handlers.server_error"
