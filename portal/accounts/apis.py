"""REST API for organizations, their members and invitations.

Anyone signed in can create an organization (and owns it). Members see their
organizations, members and pending invitations; owners and admins change roles,
remove members and invite (the services enforce who may do what).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts import services
from portal.accounts.models import Invitation, Membership, Organization, Role
from portal.accounts.selectors import organizations_for
from portal.core.api import BaseViewSet, InputSerializer, request_user, validated


class OrganizationOutputSerializer(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]
        read_only_fields = fields


class OrganizationViewSet(BaseViewSet[Organization]):
    queryset = Organization.objects.none()

    class CreateInputSerializer(InputSerializer):
        name = serializers.CharField(max_length=120)

    def visible_queryset(self) -> QuerySet[Organization]:
        return organizations_for(self.request.user).order_by("name", "id")

    @extend_schema(responses=OrganizationOutputSerializer(many=True))
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(OrganizationOutputSerializer(page, many=True).data)

    @extend_schema(responses=OrganizationOutputSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(OrganizationOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=CreateInputSerializer,
        responses={201: OrganizationOutputSerializer},
        description="Creates an organization with you as its owner.",
    )
    def create(self, request: Request) -> Response:
        data = validated(self.CreateInputSerializer, request)
        organization = services.organization_create(name=data["name"], owner=request_user(request))
        return Response(OrganizationOutputSerializer(organization).data, status=status.HTTP_201_CREATED)


class MemberOutputSerializer(serializers.ModelSerializer[Membership]):
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Membership
        fields = ["id", "organization", "user", "email", "role", "created_at"]
        read_only_fields = fields


class MemberViewSet(BaseViewSet[Membership]):
    """Members of one organization: organizations/{organization_id}/members/."""

    queryset = Membership.objects.none()

    class UpdateInputSerializer(InputSerializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def get_organization(self) -> Organization:
        return self.parent_object(organizations_for(self.request.user), "organization_id")

    def visible_queryset(self) -> QuerySet[Membership]:
        return (
            Membership.objects.filter(organization=self.get_organization())
            .select_related("user", "organization")
            .order_by("created_at", "id")
        )

    @extend_schema(responses=MemberOutputSerializer(many=True))
    def list(self, request: Request, organization_id: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MemberOutputSerializer(page, many=True).data)

    @extend_schema(responses=MemberOutputSerializer)
    def retrieve(self, request: Request, organization_id: str, pk: str) -> Response:
        return Response(MemberOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=UpdateInputSerializer,
        responses=MemberOutputSerializer,
        description="Owners and admins; only an owner grants or takes away ownership.",
    )
    def partial_update(self, request: Request, organization_id: str, pk: str) -> Response:
        membership = self.get_object()
        data = validated(self.UpdateInputSerializer, request)
        membership = services.membership_change_role(
            membership=membership, role=data["role"], actor=request_user(request)
        )
        return Response(MemberOutputSerializer(membership).data)

    @extend_schema(responses={204: None}, description="Owners and admins remove members; anyone may leave.")
    def destroy(self, request: Request, organization_id: str, pk: str) -> Response:
        services.membership_remove(membership=self.get_object(), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationOutputSerializer(serializers.ModelSerializer[Invitation]):
    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "created_at", "expires_at", "accepted_at"]
        read_only_fields = fields


class InvitationViewSet(BaseViewSet[Invitation]):
    """Invitations of one organization: organizations/{organization_id}/invitations/."""

    queryset = Invitation.objects.none()

    class CreateInputSerializer(InputSerializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    def get_organization(self) -> Organization:
        return self.parent_object(organizations_for(self.request.user), "organization_id")

    def visible_queryset(self) -> QuerySet[Invitation]:
        return Invitation.objects.filter(organization=self.get_organization()).order_by("-created_at", "-id")

    @extend_schema(responses=InvitationOutputSerializer(many=True))
    def list(self, request: Request, organization_id: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(InvitationOutputSerializer(page, many=True).data)

    @extend_schema(
        request=CreateInputSerializer,
        responses={201: InvitationOutputSerializer},
        description="Owners and admins. The invitation link is emailed; it is never in a response.",
    )
    def create(self, request: Request, organization_id: str) -> Response:
        organization = self.get_organization()
        data = validated(self.CreateInputSerializer, request)
        invitation = services.invitation_create(
            organization=organization,
            email=data["email"],
            role=data["role"],
            actor=request_user(request),
            base_url=request.build_absolute_uri("/"),
        )
        return Response(InvitationOutputSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationAcceptViewSet(BaseViewSet[Any]):
    """Has no model of its own: the token names the invitation."""

    class AcceptInputSerializer(InputSerializer):
        token = serializers.CharField(max_length=200, help_text="The token from the emailed invitation link.")

    @extend_schema(request=AcceptInputSerializer, responses={201: MemberOutputSerializer})
    def create(self, request: Request) -> Response:
        data = validated(self.AcceptInputSerializer, request)
        membership = services.invitation_accept(token=data["token"], user=request_user(request))
        return Response(MemberOutputSerializer(membership).data, status=status.HTTP_201_CREATED)
