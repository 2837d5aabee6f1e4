"""An assistant's settings in a real browser: each section saves; a mistake is said in red at its own
field with the form kept as typed; the danger zone deletes the assistant after its name is typed."""

from django.db import connection
from playwright.sync_api import expect

from assistants.models import Assistant
from tests.browser.dashboard import ERROR_RED, shots, signed_in
from tests.factories import make_assistant, make_team


def partition_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("select to_regclass(%s) is not null", [name])
        return cursor.fetchone()[0]


def test_each_section_saves_and_says_what_is_wrong_at_its_field(browser, platform, owner):
    assistant = make_assistant(make_team(owner, "Acme"), "Acme Help")
    page = signed_in(browser, platform, owner)
    page.goto(f"{platform}/assistants/{assistant.pk}/")

    # A bad website address: the error at the address, the rest as typed (it used to empty the form).
    page.get_by_label("Website address").fill("not a website")
    page.get_by_label("Max pages").fill("35")
    page.get_by_role("button", name="Add and crawl").click()
    error = page.locator("#id_url_error")
    expect(error).to_have_text("Enter the address of a website, e.g. https://www.example.com.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(page.get_by_label("Website address")).to_have_value("not a website")
    expect(page.get_by_label("Max pages")).to_have_value("35")
    shots(page, "assistant-source-error")

    # Branding: the avatar's error under the avatar, not under Name; the preview follows the form.
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("navigation", name="Settings sections").locator("[aria-current=page]")).to_have_text(
        "Branding"
    )
    page.get_by_label("Name").fill("Acme Assistant")
    expect(page.locator("[data-preview=name]")).to_have_text("Acme Assistant")
    page.get_by_label("Main colour").fill("#aa3300")
    page.get_by_label("Avatar URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Save branding").click()
    avatar = page.locator("[data-field=avatar_url]")
    expect(avatar.locator(".field-error")).to_have_text(
        "Enter an http or https address, e.g. https://www.example.com/logo.png."
    )
    expect(avatar.locator(".field-error")).to_have_css("color", ERROR_RED)
    expect(page.locator("[data-field=name] .field-error")).to_have_count(0)
    expect(page.get_by_label("Name")).to_have_value("Acme Assistant")
    expect(page.get_by_label("Main colour")).to_have_value("#aa3300")
    expect(page.get_by_label("Avatar URL")).to_have_value("javascript:alert(1)")
    shots(page, "settings-branding-error")
    page.get_by_label("Avatar URL").fill("")
    page.get_by_role("button", name="Save branding").click()
    expect(page.locator(".flash")).to_have_text("Branding saved.")
    assistant.refresh_from_db()
    assert (assistant.name, assistant.primary_color) == ("Acme Assistant", "#aa3300")

    # Behaviour: too many suggested questions, then a right number, shown in the preview.
    page.get_by_role("link", name="Behaviour").click()
    page.get_by_label("Greeting").fill("Hello! Ask me about Acme.")
    page.get_by_label("Suggested questions").fill("\n".join(f"Question {n}?" for n in range(7)))
    page.get_by_role("button", name="Save behaviour").click()
    expect(page.locator("[data-field=suggested_questions] .field-error")).to_have_text("At most 6 suggested questions.")
    expect(page.get_by_label("Greeting")).to_have_value("Hello! Ask me about Acme.")
    page.get_by_label("Suggested questions").fill("How much is it?\nHow do I start?")
    expect(page.locator("[data-preview=chips] span")).to_have_text(["How much is it?", "How do I start?"])
    expect(page.locator("[data-preview=name]")).to_have_text("Acme Assistant")  # saved in another section
    page.get_by_role("button", name="Save behaviour").click()
    expect(page.locator(".flash")).to_have_text("Behaviour saved.")
    shots(page, "settings-behaviour")

    # Model: a reranker and an embedding model that cannot be used, each refused at its field.
    page.get_by_role("link", name="Model").click()
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_label("Model", exact=True).fill("gpt-4o-mini")
    page.get_by_label("Reranker").fill("/no/such/reranker")
    page.get_by_role("button", name="Save model").click()
    expect(page.locator("[data-field=reranker_model] .field-error")).to_contain_text("not a model this server may load")
    expect(page.get_by_label("Model", exact=True)).to_have_value("gpt-4o-mini")
    page.get_by_label("Reranker").fill("")
    page.get_by_role("button", name="Save model").click()
    expect(page.locator(".flash")).to_have_text("Model saved.")
    page.get_by_label("Switch to another embedding model").fill("/no/such/embedding/model")
    page.get_by_role("button", name="Switch and re-read the content").click()
    expect(page.locator("[data-field=model_name] .field-error")).to_have_text(
        "There is no folder /no/such/embedding/model on this server."
    )
    expect(page.get_by_label("Switch to another embedding model")).to_have_value("/no/such/embedding/model")
    shots(page, "settings-model-error")
    assistant.refresh_from_db()
    assert (assistant.llm_provider, assistant.llm_model, assistant.reranker_model) == ("openai", "gpt-4o-mini", "")

    # Access: an access code makes the assistant internal.
    page.get_by_role("link", name="Access").click()
    expect(page.locator("#access-state")).to_contain_text("Anyone with the link can chat")
    page.get_by_label("Access code", exact=True).fill("abc")
    page.get_by_label("Sites that may embed the assistant").fill("www.acme.test")
    page.get_by_role("button", name="Save access").click()
    expect(page.locator("[data-field=access_code] .field-error")).to_contain_text("at least 4 characters")
    expect(page.get_by_label("Sites that may embed the assistant")).to_have_value("www.acme.test")
    page.get_by_label("Access code", exact=True).fill("staff-only-42")
    page.get_by_role("button", name="Save access").click()
    expect(page.locator("#access-state")).to_contain_text("Visitors need the access code")
    shots(page, "settings-access")
    assert not page.errors
    page.context.close()


def test_the_danger_zone_deletes_the_assistant_once_its_name_is_typed(browser, platform, owner):
    team = make_team(owner, "Acme")
    assistant = make_assistant(team, "Doomed Bot")
    make_assistant(team, "Kept Bot")
    partition = assistant.spaces.get().partition_name
    page = signed_in(browser, platform, owner, phone=True)
    page.goto(f"{platform}/assistants/{assistant.pk}/settings/danger/")
    page.get_by_text("Delete this assistant…").click()
    page.get_by_label("Type the assistant's name to confirm").fill("Doomed")
    page.get_by_role("button", name="Delete Doomed Bot for good").click()
    error = page.locator("[data-field=confirm_name] .field-error")
    expect(error).to_have_text("Type Doomed Bot exactly, to be sure you delete the right one.")
    expect(error).to_have_css("color", ERROR_RED)
    expect(page.get_by_label("Type the assistant's name to confirm")).to_have_value("Doomed")
    shots(page, "settings-danger-error")
    assert Assistant.objects.filter(pk=assistant.pk).exists() and partition_exists(partition)

    page.get_by_label("Type the assistant's name to confirm").fill("Doomed Bot")
    page.get_by_role("button", name="Delete Doomed Bot for good").click()
    expect(page.locator(".flash")).to_have_text("Doomed Bot and everything it held are deleted.")
    expect(page.locator("main .assistant-list")).to_contain_text("Kept Bot")
    expect(page.locator("main .assistant-list")).not_to_contain_text("Doomed Bot")
    assert not Assistant.objects.filter(pk=assistant.pk).exists() and not partition_exists(partition)
    shots(page, "dashboard-after-delete")
    page.context.close()
