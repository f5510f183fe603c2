from django.urls import path

from directory.api import views

urlpatterns = [
    path("vaults/<str:number>", views.VaultLookupApi.as_view(), name="vault-lookup"),
]
