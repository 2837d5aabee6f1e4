from django.contrib import admin

from assistants.models import Assistant, Conversation, Membership, Message, Team
from assistants.web.signin import AdminSignInForm

admin.site.login_form = AdminSignInForm  # failed sign-ins throttled like the dashboard's


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    inlines = [MembershipInline]


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "slug", "embedding_model", "created_at"]
    list_filter = ["team"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    readonly_fields = ["role", "text", "citations", "timings", "provider", "error", "created_at"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "assistant", "created_at", "updated_at"]
    inlines = [MessageInline]
