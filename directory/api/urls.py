from django.urls import path

from directory.api import log, plans, state, views

urlpatterns = [
    path("routing-plans", plans.RoutingPlanCreateApi.as_view(), name="routing-plans"),
    path("routing-plans/<uuid:pk>", plans.RoutingPlanDetailApi.as_view(), name="routing-plan"),
    path("vaults/<str:number>", views.VaultLookupApi.as_view(), name="vault-lookup"),
    path("vaults/<str:number>/history", log.VaultHistoryApi.as_view(), name="vault-history"),
    path("state/proofs", state.StateProofsApi.as_view(), name="state-proofs"),
    path("log/checkpoint", log.LogCheckpointApi.as_view(), name="log-checkpoint"),
    path("log/tile/entries/<path:index>", log.LogEntryTileApi.as_view(), name="log-tile-entries"),
    path("log/tile/<int:level>/<path:index>", log.LogHashTileApi.as_view(), name="log-tile"),
    path("log/proofs/inclusion", log.LogInclusionProofApi.as_view(), name="log-proof-inclusion"),
    path(
        "log/proofs/consistency",
        log.LogConsistencyProofApi.as_view(),
        name="log-proof-consistency",
    ),
]
