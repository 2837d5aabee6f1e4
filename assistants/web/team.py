"""The team: its members and their roles, invitations by email, its settings, its API keys, and the
team switcher. Every member reads these pages; owners invite, change roles, remove and rename;
owners and admins create and revoke API keys."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from assistants import access, forms, selectors, services
from assistants.web import navigation

NEW_KEY_SESSION = "new_api_key"  # the raw key of a key just created, shown once


def _site_url(request) -> str:
    """The address the user reached the dashboard by, for links in emails (as Django's password reset)."""
    return request.build_absolute_uri("/")


def _members_page(request, team, *, invite_form=None, row_error=None, status=200):
    """The members page; ``row_error`` (membership id, error, the role as typed) is shown at that member."""
    members = list(selectors.team_members(team=team))
    for membership in members:
        membership.role_error, membership.role_shown = "", membership.role
        if row_error and row_error[0] == membership.pk:
            membership.role_error = row_error[1]
            membership.role_shown = row_error[2] or membership.role
    return render(
        request,
        "dashboard/team_members.html",
        {
            "team": team,
            "members": members,
            "invitations": selectors.invitations_pending(team=team),
            "invite_form": invite_form or forms.InvitationForm(),
            "roles": forms.INVITE_ROLES,
            "role_help": access.ROLE_HELP,
            "can_own": access.Permission.OWN in team.viewer_can,
            "can_manage": access.Permission.MANAGE in team.viewer_can,
            "can_work": access.Permission.WORK in team.viewer_can,
        },
        status=status,
    )


@login_required
def team_members(request, team_id: int):
    team = access.team_for(user=request.user, team_id=team_id)
    return _members_page(request, team)


@login_required
@require_POST
def team_invite(request, team_id: int):
    """Invite someone by email (again: a new link replaces the old one)."""
    team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.OWN)
    form = forms.InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                team=team, invited_by=request.user, site_url=_site_url(request), **form.cleaned_data
            )
        except services.EmailNotSent as exc:  # the invitation is kept: Resend tries again
            messages.error(request, str(exc))
            return redirect("team_members", team_id=team.pk)
        except services.TeamError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("team_members", team_id=team.pk)
    return _members_page(request, team, invite_form=form, status=400)


@login_required
@require_POST
def invitation_resend(request, invitation_id: int):
    invitation = access.invitation_for(user=request.user, invitation_id=invitation_id, write=True)
    try:
        services.invitation_send(invitation=invitation, site_url=_site_url(request))
    except services.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invitation sent again to {invitation.email}; the earlier link no longer works.")
    return redirect("team_members", team_id=invitation.team_id)


@login_required
@require_POST
def invitation_revoke(request, invitation_id: int):
    invitation = access.invitation_for(user=request.user, invitation_id=invitation_id, write=True)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, f"The invitation to {invitation.email} is cancelled; its link no longer works.")
    return redirect("team_members", team_id=invitation.team_id)


@login_required
@require_POST
def membership_role(request, membership_id: int):
    membership = access.membership_for(user=request.user, membership_id=membership_id, write=True)
    form = forms.RoleForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose owner, admin or member."
    else:
        try:
            services.membership_role_change(membership=membership, role=form.cleaned_data["role"])
        except services.TeamError as exc:
            error = str(exc)
    if error:
        team = access.team_for(user=request.user, team_id=membership.team_id)
        typed = request.POST.get("role", "")
        return _members_page(request, team, row_error=(membership.pk, error, typed), status=400)
    messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
    if membership.user_id == request.user.pk and membership.role != "owner":
        return redirect("dashboard")  # they no longer manage the team's members
    return redirect("team_members", team_id=membership.team_id)


@login_required
@require_POST
def membership_remove(request, membership_id: int):
    membership = access.membership_for(user=request.user, membership_id=membership_id, write=True)
    try:
        services.membership_remove(membership=membership)
    except services.TeamError as exc:
        team = access.team_for(user=request.user, team_id=membership.team_id)
        return _members_page(request, team, row_error=(membership.pk, str(exc), ""), status=400)
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {membership.team.name}.")
        return redirect("dashboard")
    messages.success(request, f"{membership.user.username} was removed from {membership.team.name}.")
    return redirect("team_members", team_id=membership.team_id)


@login_required
def team_settings(request, team_id: int):
    if request.method == "POST":
        team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.OWN)
        form = forms.TeamForm(request.POST)
        if form.is_valid():
            services.team_update(team=team, name=form.cleaned_data["name"])
            messages.success(request, "Team settings saved.")
            return redirect("team_settings", team_id=team.pk)
    else:
        team = access.team_for(user=request.user, team_id=team_id)
        form = forms.TeamForm(initial={"name": team.name})
    return render(
        request,
        "dashboard/team_settings.html",
        {"team": team, "form": form, "can_own": access.Permission.OWN in team.viewer_can},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_POST
def team_switch(request, team_id: int):
    """The team switcher: make the team the dashboard's current one."""
    team = access.team_for(user=request.user, team_id=team_id)
    navigation.remember_team(request, team)
    return redirect("dashboard")


@login_required
def team_api_keys(request, team_id: int):
    """The team's API keys: every member sees them (by prefix); owners and admins create and revoke
    them. A new key is shown once, on the page the creation redirects to (a reload shows it no more)."""
    from assistants.api.keys import api_key_create, api_key_revoke

    if request.method == "POST":
        team = access.team_for(user=request.user, team_id=team_id, need=access.Permission.MANAGE)
        form = forms.ApiKeyForm(request.POST)
        if "revoke" in request.POST:
            key = team.api_keys.filter(pk=request.POST.get("revoke") or 0, revoked_at__isnull=True).first()
            if key:
                api_key_revoke(key=key)
                messages.success(request, f"Key {key.name} revoked: requests made with it are refused from now on.")
            return redirect("team_api_keys", team_id=team.pk)
        if form.is_valid():
            _, raw_key = api_key_create(team=team, **form.cleaned_data)
            request.session[NEW_KEY_SESSION] = raw_key
            return redirect("team_api_keys", team_id=team.pk)
    else:
        team = access.team_for(user=request.user, team_id=team_id)
        form = forms.ApiKeyForm()
    return render(
        request,
        "dashboard/api_keys.html",
        {
            "team": team,
            "keys": team.api_keys.order_by("revoked_at", "-created_at"),
            "form": form,
            "new_key": request.session.pop(NEW_KEY_SESSION, None) if request.method == "GET" else None,
            "can_manage": access.Permission.MANAGE in team.viewer_can,
        },
        status=400 if form.is_bound else 200,
    )


def invitation_accept(request, token: str):
    """The link of an invitation email: who invites to which team with which role; a signed-in user
    joins with one press, someone new signs up here (their email is the invitation's)."""
    invitation, problem = selectors.invitation_from_link(token=token)
    signup_form = None
    if invitation is not None and request.method == "POST":
        if request.user.is_authenticated:
            try:
                services.invitation_accept(invitation=invitation, user=request.user)
            except services.TeamError as exc:
                invitation, problem = None, str(exc)
            else:
                return _joined(request, invitation)
        else:
            signup_form = forms.InvitedSignupForm(request.POST)
            if signup_form.is_valid():
                try:
                    user, _ = services.user_signup_invited(invitation=invitation, **signup_form.cleaned_data)
                except services.TeamError as exc:
                    invitation, problem = None, str(exc)
                else:
                    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                    return _joined(request, invitation)
    if invitation is not None and not request.user.is_authenticated and signup_form is None:
        signup_form = forms.InvitedSignupForm()
    return render(
        request,
        "registration/invitation.html",
        {
            "invitation": invitation,
            "problem": problem,
            "signup_form": signup_form,
            "already_member": bool(
                invitation
                and request.user.is_authenticated
                and invitation.team.memberships.filter(user=request.user).exists()
            ),
            "login_url": reverse("login") + "?next=" + request.path,
        },
        status=400 if signup_form is not None and signup_form.errors else 200,
    )


def _joined(request, invitation):
    navigation.remember_team(request, invitation.team)
    messages.success(request, f"Welcome to {invitation.team.name}!")
    return redirect("dashboard")
