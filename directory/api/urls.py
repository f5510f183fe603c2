from django.urls import path

from directory.api import plans, views

urlpatterns = [
    path("routing-plans", plans.RoutingPlanCreateApi.as_view(), name="routing-plans"),
    path("routing-plans/<uuid:pk>", plans.RoutingPlanDetailApi.as_view(), name="routing-plan"),
    path("vaults/<str:number>", views.VaultLookupApi.as_view(), name="vault-lookup"),
]
