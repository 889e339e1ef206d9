"""Plugin loading: third-party embedders and parsers through entry points, the off switch, the block list."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from codeindex import Index, plugins
from codeindex.languages import LanguageMap

TINY_EMBEDDER = textwrap.dedent('''
    import hashlib
    import numpy as np
    import codeindex
    from codeindex.hookspecs import EmbedderBackend

    class Tiny:
        backend = "tiny"
        model_id = "tiny-v1"
        dim = 8
        max_tokens = 64
        device = "cpu"

        def count_tokens(self, texts):
            return [len(t.split()) + 2 for t in texts]

        def embed(self, texts):
            out = np.zeros((len(texts), 8), dtype=np.float32)
            for i, t in enumerate(texts):
                for w in t.lower().split():
                    out[i, hashlib.blake2b(w.encode(), digest_size=1).digest()[0] % 8] += 1
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
            return out

    def count(texts):
        return [len(t.split()) + 2 for t in texts]

    @codeindex.hookimpl
    def codeindex_embedders():
        return [EmbedderBackend("tiny", "a toy embedder from a third party", lambda s: Tiny(),
                                lambda s: ("tiny-v1", 8, 64), lambda s: count)]
''')

OVERRIDE_PARSER = textwrap.dedent('''
    import codeindex
    from codeindex.hookspecs import LanguageSpec
    from codeindex.models import Chunk

    class WholeFile:
        name = "wholefile"
        version = "1"

        def languages(self):
            return [LanguageSpec("python", extensions=(".py",))]

        def config_hash(self, language):
            return "0"

        def chunk(self, source, path, language, budget):
            text = source.decode("utf-8", "replace")
            return [Chunk(path, language, 1, max(1, text.count("\\n")), 0, len(source), "file", path, text,
                          text, 1)]

    @codeindex.hookimpl
    def codeindex_parsers():
        return [WholeFile()]
''')


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "tiny_embedder.py").write_text(TINY_EMBEDDER)
    (pkg / "override_parser.py").write_text(OVERRIDE_PARSER)
    monkeypatch.syspath_prepend(str(pkg))
    return pkg


def test_third_party_embedder_is_used_for_a_real_index(third_party: Path, scenario,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    manager = plugins.build_plugin_manager(
        [metadata.EntryPoint("tiny", "tiny_embedder", "codeindex.embedders")])
    assert manager.warnings == []
    assert "tiny" in manager.embedder_backends()
    assert manager.infos["tiny"].embedders[0].description.startswith("a toy embedder")
    monkeypatch.setattr(plugins, "_manager", manager)
    root = scenario("e2e_repo")
    index = Index(root)
    report = index.rebuild(embedder="tiny", scheduler="sync")
    assert report.embedder == "tiny" and report.model_id == "tiny-v1" and report.chunks_embedded > 0
    assert index.status()["model_id"] == "tiny-v1"
    assert index.search("haversine_km", k=3)


def test_later_parser_wins_a_shared_extension(third_party: Path) -> None:
    manager = plugins.build_plugin_manager(
        [metadata.EntryPoint("wholefile", "override_parser", "codeindex.parsers")])
    lang_map = LanguageMap.from_parsers(manager.parsers())
    assert lang_map.parser_for("python") == "wholefile"
    assert lang_map.parser_for("go") == "treesitter"


def test_codeindex_parsers_hook_of_a_broken_plugin_is_a_warning(third_party: Path) -> None:
    (third_party / "bad_parsers.py").write_text(
        "import codeindex\n@codeindex.hookimpl\ndef codeindex_parsers():\n    return ['not a parser']\n")
    manager = plugins.build_plugin_manager(
        [metadata.EntryPoint("bad", "bad_parsers", "codeindex.parsers")])
    assert any("'bad'" in w and "not parsers" in w for w in manager.warnings)
    assert {p.name for p in manager.parsers()} >= {"treesitter", "text"}


def test_off_switch_and_block_list(cli, notebooks_site: Path) -> None:
    def names(env: dict[str, str]) -> set[str]:
        proc = cli("plugins", "--json", env={"PYTHONPATH": str(notebooks_site), **env})
        assert proc.returncode == 0, proc.stderr
        return {row["name"] for row in json.loads(proc.stdout)["plugins"]}

    assert "notebooks" in names({}), "the example plugin, installed, is discovered"
    assert names({"CODEINDEX_DISABLE_PLUGIN_AUTOLOAD": "1"}) == {"treesitter", "text", "onnx",
                                                                 "sentence-transformers", "hashing"}
    blocked = names({"CODEINDEX_BLOCK_PLUGINS": "notebooks,sentence-transformers"})
    assert "notebooks" not in blocked and "sentence-transformers" not in blocked and "onnx" in blocked


SPECNAME_PARSER = OVERRIDE_PARSER.replace(
    "@codeindex.hookimpl\ndef codeindex_parsers():",
    '@codeindex.hookimpl(specname="codeindex_parsers")\ndef my_parsers():')
INSTANCE_PLUGIN = OVERRIDE_PARSER.replace(
    "@codeindex.hookimpl\ndef codeindex_parsers():\n    return [WholeFile()]",
    "class Plugin:\n    @codeindex.hookimpl\n    def codeindex_parsers(self):\n"
    "        return [WholeFile()]\n\nPLUGIN = Plugin()")


def test_hooks_are_called_through_pluggy_specname_and_instances(third_party: Path) -> None:
    """pluggy's own call path: a ``specname`` alias and a class-instance plugin both contribute."""
    (third_party / "specname_parser.py").write_text(SPECNAME_PARSER)
    (third_party / "instance_parser.py").write_text(INSTANCE_PLUGIN)
    for ep in (metadata.EntryPoint("aliased", "specname_parser", "codeindex.parsers"),
               metadata.EntryPoint("instance", "instance_parser:PLUGIN", "codeindex.parsers")):
        manager = plugins.build_plugin_manager([ep])
        assert manager.warnings == [], manager.warnings
        assert LanguageMap.from_parsers(manager.parsers()).parser_for("python") == "wholefile"
        assert [p.name for p in manager.infos[ep.name].parsers] == ["wholefile"]


def test_tryfirst_wins_a_shared_extension_whatever_the_registration_order(third_party: Path) -> None:
    first = OVERRIDE_PARSER.replace('name = "wholefile"', 'name = "eager"').replace(
        "@codeindex.hookimpl\n", "@codeindex.hookimpl(tryfirst=True)\n")
    (third_party / "eager_parser.py").write_text(first)
    manager = plugins.build_plugin_manager([
        metadata.EntryPoint("eager", "eager_parser", "codeindex.parsers"),
        metadata.EntryPoint("wholefile", "override_parser", "codeindex.parsers")])
    assert manager.warnings == []
    assert LanguageMap.from_parsers(manager.parsers()).parser_for("python") == "eager"


def test_every_hook_is_really_called_by_the_plugin_manager(third_party: Path) -> None:
    """The meta-test's other half: a plugin implementing every hookspec has each one called exactly once."""
    from codeindex import hookspecs

    names = sorted(n for n in dir(hookspecs) if n.startswith("codeindex_") and callable(getattr(hookspecs, n)))
    (third_party / "every_hook.py").write_text("import codeindex\nCALLS = []\n" + "".join(
        f"@codeindex.hookimpl\ndef {n}():\n    CALLS.append({n!r})\n    return []\n" for n in names))
    import every_hook  # type: ignore[import-not-found]

    manager = plugins.build_plugin_manager([metadata.EntryPoint("every", "every_hook", "codeindex.parsers")])
    assert manager.warnings == []
    assert sorted(every_hook.CALLS) == names
