from django.urls import path

from registry.api import views

urlpatterns = [
    path(
        "provider-applications",
        views.ProviderApplicationApi.as_view(),
        name="provider-applications",
    ),
    path("issuer-applications", views.IssuerApplicationApi.as_view(), name="issuer-applications"),
    path("provider/endpoints", views.EndpointListCreateApi.as_view(), name="provider-endpoints"),
    path(
        "provider/endpoints/<uuid:pk>/deactivate",
        views.EndpointDeactivateApi.as_view(),
        name="provider-endpoint-deactivate",
    ),
    path(
        "provider/certificates",
        views.CertificateListCreateApi.as_view(),
        name="provider-certificates",
    ),
    path(
        "provider/certificates/<uuid:pk>/retire",
        views.CertificateRetireApi.as_view(),
        name="provider-certificate-retire",
    ),
    path("provider/vaults", views.VaultListAllocateApi.as_view(), name="provider-vaults"),
    path("provider/vaults/<str:number>", views.VaultDetailApi.as_view(), name="provider-vault"),
    path(
        "provider/vaults/<str:number>/hold",
        views.VaultHoldApi.as_view(),
        name="provider-vault-hold",
    ),
    path(
        "provider/vaults/<str:number>/release",
        views.VaultReleaseApi.as_view(),
        name="provider-vault-release",
    ),
    path(
        "provider/vaults/<str:number>/close",
        views.VaultCloseApi.as_view(),
        name="provider-vault-close",
    ),
]
