from django.urls import path

from registry.api import messages, transfers, views

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
    # Portability (issue 5)
    path(
        "provider/vaults/<str:number>/transfer-code",
        transfers.TransferCodeApi.as_view(),
        name="provider-vault-transfer-code",
    ),
    path(
        "provider/vaults/<str:number>/transfer-code/revoke",
        transfers.TransferCodeRevokeApi.as_view(),
        name="provider-vault-transfer-code-revoke",
    ),
    path(
        "provider/vaults/<str:number>/prohibit-transfer",
        transfers.VaultProhibitTransferApi.as_view(),
        name="provider-vault-prohibit-transfer",
    ),
    path(
        "provider/vaults/<str:number>/allow-transfer",
        transfers.VaultAllowTransferApi.as_view(),
        name="provider-vault-allow-transfer",
    ),
    path(
        "provider/transfers",
        transfers.TransferListRequestApi.as_view(),
        name="provider-transfers",
    ),
    path(
        "provider/transfers/<uuid:pk>",
        transfers.TransferDetailApi.as_view(),
        name="provider-transfer",
    ),
    path(
        "provider/transfers/<uuid:pk>/approve",
        transfers.TransferApproveApi.as_view(),
        name="provider-transfer-approve",
    ),
    path(
        "provider/transfers/<uuid:pk>/reject",
        transfers.TransferRejectApi.as_view(),
        name="provider-transfer-reject",
    ),
    path(
        "provider/transfers/<uuid:pk>/cancel",
        transfers.TransferCancelApi.as_view(),
        name="provider-transfer-cancel",
    ),
    path("provider/webhook", messages.WebhookApi.as_view(), name="provider-webhook"),
    path(
        "provider/webhook/remove",
        messages.WebhookRemoveApi.as_view(),
        name="provider-webhook-remove",
    ),
    path("messages", messages.MessageListApi.as_view(), name="messages"),
    path("messages/<int:pk>/ack", messages.MessageAckApi.as_view(), name="message-ack"),
]
