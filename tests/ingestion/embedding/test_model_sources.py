"""Which models a team may name (security finding 10): folders under MODEL_ROOT and hub ids the operator
allows; nothing else is loaded or looked up, and the refusal says the same for a folder that exists and
one that does not."""

import time

import pytest

from assistants.forms import AssistantBrandingForm
from ingestion.embedding import embedding_dims, get_embedder
from ingestion.embedding.recipes import ModelNotAllowed, model_location
from ingestion.search.rerank import recipe_for as reranker_recipe_for
from tests.factories import make_assistant
from tests.ingestion.embedding.tiny_models import save_model


@pytest.fixture
def root(settings, tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    settings.MODEL_ROOT = str(root)
    settings.MODEL_HUB_ALLOWED = []
    return root


def test_a_folder_under_the_root_is_loaded_by_its_relative_or_absolute_name(root):
    save_model("bert", root / "tiny-bert")
    assert model_location("tiny-bert") == str(root / "tiny-bert")
    assert model_location(str(root / "tiny-bert")) == str(root / "tiny-bert")
    assert embedding_dims(str(root / "tiny-bert")) > 0


@pytest.mark.parametrize("name", ["/etc", "/", "../../../etc", "/tmp/../etc", "/nonexistent/models/x", "tiny/../../x"])
def test_folders_outside_the_root_are_refused_like_missing_ones(root, name):
    with pytest.raises(ModelNotAllowed) as refused:
        model_location(name)
    assert "MODEL_ROOT" in str(refused.value) and str(root) not in str(refused.value)


def test_a_symlink_out_of_the_root_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    save_model("bert", outside)
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelNotAllowed):
        model_location("link")


def test_hub_ids_are_refused_at_once_unless_allowed(root, settings):
    start = time.monotonic()
    for name in ("no-such/reranker-for-tests", "thenlper/gte-base", "Qwen/Qwen3-Embedding-0.6B"):
        with pytest.raises(ModelNotAllowed):
            embedding_dims(name)
        with pytest.raises(ModelNotAllowed):
            reranker_recipe_for(name)
    assert time.monotonic() - start < 1, "nothing may be asked of the hub"
    settings.MODEL_HUB_ALLOWED = ["thenlper/gte-base"]
    assert model_location("thenlper/gte-base") == "thenlper/gte-base"
    assert embedding_dims("thenlper/gte-base") == 768  # known: no download to learn it


def test_the_default_model_needs_no_permission(root):
    assert embedding_dims("") == 384 and get_embedder("").dims == 384


@pytest.mark.django_db
def test_the_dashboard_says_which_settings_refuse_a_model_without_revealing_folders(root):
    assistant = make_assistant()
    data = {"name": "A", "primary_color": "#000000", "background_color": "#ffffff", "reranker_model": "/etc"}
    form = AssistantBrandingForm(data=data, instance=assistant)
    assert not form.is_valid()
    message = " ".join(form.errors["reranker_model"])
    assert "MODEL_ROOT" in message and "/etc'" in message and "neither" not in message
    form = AssistantBrandingForm(data={**data, "reranker_model": "/no/such/folder"}, instance=assistant)
    assert not form.is_valid()
    assert " ".join(form.errors["reranker_model"]).replace("/no/such/folder", "/etc") == message
