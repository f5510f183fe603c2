"""The portal under /portal/: accounts, then provider and issuer pages."""

from django.urls import path

from registry.portal.views import accounts, common, issuer, notifications, provider

app_name = "portal"

urlpatterns = [
    path("", common.home, name="home"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("invitation/<str:token>/", accounts.invitation_view, name="invitation"),
    path("totp/", accounts.totp_enrol_view, name="totp-enrol"),
    path("recovery-codes/", accounts.recovery_codes_view, name="recovery-codes"),
    path("tokens/", common.token_list, name="tokens"),
    path("tokens/<uuid:pk>/revoke/", common.token_revoke, name="token-revoke"),
    path("users/", common.users, name="users"),
    path("users/<int:pk>/role/", common.user_role, name="user-role"),
    path("users/<int:pk>/remove/", common.user_remove, name="user-remove"),
    path("audit/", common.audit, name="audit"),
    # Providers
    path("endpoints/", provider.endpoints, name="endpoints"),
    path(
        "endpoints/<uuid:pk>/deactivate/", provider.endpoint_deactivate, name="endpoint-deactivate"
    ),
    path("certificates/", provider.certificates, name="certificates"),
    path("certificates/<uuid:pk>/retire/", provider.certificate_retire, name="certificate-retire"),
    path("vaults/", provider.vault_list, name="vaults"),
    path("vaults/allocate/", provider.vault_allocate, name="vault-allocate"),
    path("vaults/<str:number>/", provider.vault_detail, name="vault"),
    path("vaults/<str:number>/close/", provider.vault_close, name="vault-close"),
    path("vaults/<str:number>/<slug:action>/", provider.vault_action, name="vault-action"),
    path("transfers/", provider.transfer_list, name="transfers"),
    path("transfers/<uuid:pk>/", provider.transfer_detail, name="transfer"),
    path("messages/", notifications.message_list, name="messages"),
    path("messages/ack-all/", notifications.message_ack_all, name="messages-ack-all"),
    path("messages/<int:pk>/ack/", notifications.message_ack, name="message-ack"),
    path("webhook/", notifications.webhook, name="webhook"),
    path("webhook/remove/", notifications.webhook_remove, name="webhook-remove"),
    # Issuers
    path("plans/", issuer.plans, name="plans"),
    path("plans/<uuid:pk>/", issuer.plan_detail, name="plan"),
    path("plans/<uuid:pk>/download.<str:fmt>", issuer.plan_download, name="plan-download"),
]
