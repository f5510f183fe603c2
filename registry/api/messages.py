"""The message queue (EPP-style poll: oldest first, then acknowledge) and the webhook settings.

Every provider reads only its own queue: another provider's message is not found (404).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from registry.api.views import _ProviderApi
from registry.errors import ErrorCode, NotFound
from registry.models import DeliveryState, Message, MessageKind, Webhook
from registry.services import messages

# --- Serializers ----------------------------------------------------------------------------------


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Stable: webhooks send it as webhook-id, to dedupe")
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    created_at = serializers.DateTimeField()
    data = serializers.JSONField(source="payload")
    acked_at = serializers.DateTimeField(allow_null=True)
    delivery_state = serializers.ChoiceField(
        choices=DeliveryState.choices, help_text="Of the webhook delivery, if you have a webhook"
    )


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.URLField(
        max_length=500,
        help_text="https:// only, without credentials, its host resolving to public addresses",
    )


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["url", "created_at", "removed_at", "last_success_at", "last_failure_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="Shown this once. Verify each request's webhook-signature with it."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


# --- Views ----------------------------------------------------------------------------------------


class MessageListApi(_ProviderApi, generics.GenericAPIView):
    """Your messages not yet acknowledged, oldest first (cursor-paginated)."""

    serializer_class = MessageSerializer

    def get_queryset(self):
        return Message.objects.filter(provider=self.provider, acked_at__isnull=True)

    @extend_schema(responses=MessageSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MessageSerializer(page, many=True).data)


class MessageAckApi(_ProviderApi):
    """Acknowledge a message: it leaves the queue. Acknowledging it again changes nothing."""

    @extend_schema(
        request=None,
        responses={200: MessageSerializer, 404: OpenApiResponse(description="message_not_found")},
    )
    def post(self, request, pk):
        message = messages.message_ack(actor=self.actor, provider=self.provider, message_id=pk)
        return Response(MessageSerializer(message).data)


class WebhookApi(_ProviderApi):
    """Your webhook, or register one (replacing the previous one): its secret is shown once."""

    @extend_schema(
        responses={200: WebhookSerializer, 404: OpenApiResponse(description="webhook_not_found")}
    )
    def get(self, request):
        webhook = Webhook.objects.live().filter(provider=self.provider).first()
        if webhook is None:
            raise NotFound(ErrorCode.WEBHOOK_NOT_FOUND, "You have no webhook.")
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(
        request=WebhookInputSerializer,
        responses={
            201: WebhookCreatedSerializer,
            400: OpenApiResponse(
                description="validation_error: not_https, credentials_in_url, "
                "unresolvable_host or address_not_public"
            ),
        },
    )
    def post(self, request):
        data = WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook, secret = messages.webhook_register(
            actor=self.actor, provider=self.provider, url=data.validated_data["url"]
        )
        body = {**WebhookSerializer(webhook).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class WebhookRemoveApi(_ProviderApi):
    """Stop pushing messages to your webhook; they stay in the queue."""

    @extend_schema(
        request=None,
        responses={200: WebhookSerializer, 404: OpenApiResponse(description="webhook_not_found")},
    )
    def post(self, request):
        webhook = messages.webhook_remove(actor=self.actor, provider=self.provider)
        return Response(WebhookSerializer(webhook).data)
