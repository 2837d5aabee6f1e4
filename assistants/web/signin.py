"""Signing in to the dashboard and the admin, with failed attempts throttled (security finding 6).

Failures are counted per account and client address, and per address, in windows of
``LOGIN_WINDOW`` seconds (``settings.LOGIN_FAILURES_PER_ACCOUNT`` and ``_PER_ADDRESS``). Once a count is
reached, sign-ins from there are refused — even with the right password — until the window ends, with
429 and ``Retry-After``. A lockout therefore ends by itself, and as it is keyed by address too, nobody
can lock another person out of their account from elsewhere; a successful sign-in clears its account's
count.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm

from chatsite.lib import ratelimit
from chatsite.lib.clients import client_address

LOGIN_WINDOW = 15 * 60


class ThrottledSignIn:
    """A mixin for Django's authentication forms: refuse while throttled, count failures."""

    retry_after: int | None = None

    def _keys(self) -> tuple[str, str]:
        address = client_address(self.request) if self.request is not None else "unknown"
        account = (self.data.get("username") or "").strip().lower()[:150]
        return f"login:account:{address}:{account}", f"login:address:{address}"

    def clean(self):
        account_key, address_key = self._keys()
        for key, limit in (
            (account_key, settings.LOGIN_FAILURES_PER_ACCOUNT),
            (address_key, settings.LOGIN_FAILURES_PER_ADDRESS),
        ):
            verdict = ratelimit.peek(key, limit=limit)
            if not verdict.allowed:
                self.retry_after = verdict.retry_after
                minutes = max(1, round(verdict.retry_after / 60))
                raise forms.ValidationError(
                    f"Too many failed sign-ins. Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
                    code="throttled",
                )
        try:
            return super().clean()
        except forms.ValidationError:
            ratelimit.hit(account_key, limit=settings.LOGIN_FAILURES_PER_ACCOUNT, window=LOGIN_WINDOW)
            ratelimit.hit(address_key, limit=settings.LOGIN_FAILURES_PER_ADDRESS, window=LOGIN_WINDOW)
            raise

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        ratelimit.reset(self._keys()[0])


class SignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response
