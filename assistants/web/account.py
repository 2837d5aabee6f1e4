"""The user's account: their details and teams, and a new password (Django's own views, as is the
password reset by email wired in assistants/urls.py)."""

from django.contrib.auth import views as auth_views
from django.contrib.messages.views import SuccessMessageMixin
from django.urls import reverse_lazy

from assistants import selectors


class AccountView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """The account page (signed in only); its form changes the password (the user stays signed in)."""

    template_name = "account/account.html"
    success_url = reverse_lazy("account")
    success_message = "Your password is changed."

    def get_context_data(self, **kwargs):
        return super().get_context_data(teams=selectors.teams_for_user(user=self.request.user), **kwargs)


account = AccountView.as_view()

# Password reset by email: Django's views with this product's pages and email (templates/registration/).
password_reset = auth_views.PasswordResetView.as_view(
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt",
)
password_reset_done = auth_views.PasswordResetDoneView.as_view()
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view()
