"""Secrets never enter the index: credential files are skipped, secret values masked before parsing, and
the index records what it masked (kind and line, never the value)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from codeindex import Index
from codeindex.search.analysis import code_tokens, term_key
from codeindex.secrets import Redaction, is_secret_file, redact
from codeindex.store.redactions import redactions_of

AWS_ID = "AKIAQWERTYUIOP123456"
AWS_SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzq81kfj3k2lq"
GITHUB = "ghp_" + "Zq8rT2mX9vL4nB7kP1sW6yH3jD5fG0aQcE2u"
SLACK = "xoxb-2740331245-9981273645-Tq3sZp8rW"
DJANGO = "django-insecure-8x$2k#9z!qv7w@a^b&c3mf"
YAML_PASSWORD = "Hr7sPq2Lk9Wd3"
PEM_BODY = "MIIEowIBAAKCAQEA7bq9kqLxQw3VzU8nJm2XyP4aR6tH1sD0fG5cB8eK2jL3mN4o"
ENV_VALUE = "envOnly9Ks72Lq"
SECRETS = [AWS_ID, AWS_SECRET, GITHUB, SLACK, DJANGO, YAML_PASSWORD, PEM_BODY, ENV_VALUE]


def _secrets_tree(root: Path) -> None:
    files = {
        ".env": f"DATABASE_URL=postgres://u@h/db\nSESSION_SECRET={ENV_VALUE}\n",
        ".env.example": "SESSION_SECRET=change-me\n",
        ".env.test": f"API_TOKEN={ENV_VALUE}\n",
        ".aws/credentials": f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        "id_rsa": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----\n",
        "certs/server.pem": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n",
        "certs/tls.key": f"{PEM_BODY}\n",
        ".netrc": f"machine api.example.com login me password {YAML_PASSWORD}\n",
        ".npmrc": f"//registry.npmjs.org/:_authToken={GITHUB}\n",
        ".git-credentials": f"https://me:{GITHUB}@github.com\n",
        ".ssh/config": "Host example\n  IdentityFile ~/.ssh/id_rsa\n",
        "settings.py": f"DEBUG = False\nSECRET_KEY = '{DJANGO}'\nALLOWED_HOSTS = ['example.com']\n",
        "deploy.py": (f"import os\n\nGITHUB_TOKEN = \"{GITHUB}\"\n\n\ndef deploy(secret_key_file):\n"
                      f"    \"\"\"Push the secret key release.\"\"\"\n"
                      f"    client = connect(\"{AWS_ID}\", \"{AWS_SECRET}\")\n"
                      f"    client.notify(\"{SLACK}\")\n    return client\n"),
        "config.yaml": f"database:\n  user: app\n  password: {YAML_PASSWORD}\n",
        "embedded_key.py": (f"KEY = '''-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY}\n"
                            "-----END RSA PRIVATE KEY-----'''\n\n\ndef load_key():\n    return KEY\n"),
        "README.md": "# Deploying\n\nSet the secret key and the API token in the environment.\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".codeindexignore").write_text("!.env.test\n")  # re-included on purpose: values still masked


def _all_text(root: Path) -> str:
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT path, text, embed_head, symbol FROM chunks").fetchall()
    finally:
        con.close()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_a_tree_of_secrets_is_indexed_without_them(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    _secrets_tree(root)
    index = Index(root)
    report = index.rebuild(scheduler="sync", embedder="hashing")
    stored = _all_text(root)
    for secret in SECRETS:
        assert secret not in stored, secret
    assert "deploy" in stored and "ALLOWED_HOSTS" in stored  # the code around the secrets is indexed
    for query in ("secret key", "api token password", "private key", "credentials", "aws access key"):
        for mode in ("hybrid", "lexical", "vector"):
            for result in index.search(query, mode=mode, k=20):
                for secret in SECRETS:
                    assert secret not in result.text, (query, mode, result.path)
    # no lexical posting for any piece of a secret either
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        terms = {r[0] for r in con.execute("SELECT DISTINCT term_id FROM postings").fetchall()}
    finally:
        con.close()
    leaked = [t for s in SECRETS for t in code_tokens(s) if len(t) > 6 and term_key(t) in terms]
    assert not leaked
    assert report.skipped["secret-file"] == 9  # .env, credentials, id_rsa, .pem, .key, .netrc, .npmrc,
    # .git-credentials and the .ssh/ folder; .env.example is a template, .env.test is re-included
    con = duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True)
    try:
        indexed = {r[0] for r in con.execute("SELECT path FROM files").fetchall()}
    finally:
        con.close()
    assert indexed == {".codeindexignore", ".env.example", ".env.test", "README.md", "config.yaml", "deploy.py",
                       "embedded_key.py", "settings.py"}
    assert report.secrets_redacted == 8


def test_the_index_records_what_it_masked_never_the_value(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    _secrets_tree(root)
    Index(root).rebuild(scheduler="sync", embedder="hashing")
    index_dir = root / ".codeindex"
    assert redactions_of(index_dir, "settings.py") == [Redaction(2, "secret-assignment", "SECRET_KEY")]
    assert redactions_of(index_dir, "deploy.py") == [
        Redaction(3, "github-token"), Redaction(8, "aws-access-key"), Redaction(8, "aws-secret-key"),
        Redaction(9, "slack-token")]
    assert redactions_of(index_dir, ".env.test") == [Redaction(1, "secret-assignment", "API_TOKEN")]
    assert redactions_of(index_dir, "embedded_key.py") == [Redaction(1, "private-key")]
    assert redactions_of(index_dir, "README.md") == []
    # a moved file's record follows it; a fixed file's goes
    (root / "settings.py").rename(root / "prod_settings.py")
    Index(root).update(scheduler="sync")
    assert redactions_of(index_dir, "settings.py") == []
    assert redactions_of(index_dir, "prod_settings.py") == [Redaction(2, "secret-assignment", "SECRET_KEY")]
    (root / "prod_settings.py").write_text("SECRET_KEY = os.environ['SECRET_KEY']\n")
    Index(root).update(scheduler="sync")
    assert redactions_of(index_dir, "prod_settings.py") == []


@pytest.mark.parametrize(("line", "kind", "kept"), [
    (f'key = "{AWS_ID}"', "aws-access-key", 'key = "AKIA'),
    (f"token = '{GITHUB}'", "github-token", "token = 'ghp_"),
    (f"hook = 'https://hooks.slack.com/services/T0123ABCD/B0123ABCD/{YAML_PASSWORD}xyz'", "slack-webhook",
     "hook = 'https://hooks.slack.com/services/"),
    (f"slack = {SLACK!r}", "slack-token", "slack = 'xoxb-"),
    (f"maps = 'AIza{'Sy' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q'}'", "google-api-key", "maps = 'AIza"),
    (f"stripe = 'sk_live_{'4eC39HqLyjWDarjtT1zdp7dc'}'", "stripe-key", "stripe = 'sk_live_"),
    (f'DB_PASSWORD = "{YAML_PASSWORD}"', "secret-assignment", 'DB_PASSWORD = "'),
    (f'"api_key": "{AWS_SECRET}",', "secret-assignment", '"api_key": "'),
    (f"export AUTH_TOKEN={ENV_VALUE}", "secret-assignment", "export AUTH_TOKEN="),
    (f'token: str = "{YAML_PASSWORD}"', "secret-assignment", 'token: str = "'),
])
def test_each_shape_is_masked_in_place(line: str, kind: str, kept: str) -> None:
    data = f"first line\n{line}\nlast line\n".encode()
    masked, found = redact(data)
    assert len(masked) == len(data) and masked.count(b"\n") == data.count(b"\n")
    assert [(r.line, r.kind) for r in found] == [(2, kind)]
    text = masked.decode()
    assert text.splitlines()[1].startswith(kept) and "*" * 8 in text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("line", [
    "    withCredentials: defaultToConfig2,",
    "axios.CancelToken = CancelToken;",
    "SECRET_KEY = settings.SECRET_KEY",
    "password = os.environ['PASSWORD']",
    "db_password: ${DB_PASSWORD}",
    'TOKEN_URL = "https://oauth2.googleapis.com/token"',
    'getFirstToken: "getFirstToken",',
    'tokenRequestTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"',
    'SECRET_KEY_FILE = "/run/secrets/django_key"',
    "def tokenize(text): return text.split()",
    'assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")',
    'password = "hunter2"',
    "keyboard_layout = 'dvorak-programmer-2'",
])
def test_ordinary_code_is_left_alone(line: str) -> None:
    data = (line + "\n").encode()
    assert redact(data) == (data, [])


def test_credential_files_are_recognised_by_name() -> None:
    for name, parent in [(".env", ""), (".env.local", ""), ("prod.env", ""), ("id_ed25519", ".ssh"),
                         ("server.PEM", ""), ("credentials", ".aws"), ("config.json", ".docker"),
                         ("terraform.tfstate", ""), ("terraform.tfstate.backup", ""), (".pgpass", "")]:
        ext = name.rsplit(".", 1)[1].lower() if "." in name[1:] else ""
        assert is_secret_file(name, ext, parent), name
    for name, parent in [(".env.example", ""), ("environment.py", ""), ("id_rsa.pub", ""), ("credentials", "docs"),
                         ("config.json", "app"), ("keys.py", "")]:
        ext = name.rsplit(".", 1)[1].lower() if "." in name[1:] else ""
        assert not is_secret_file(name, ext, parent), name


def test_why_shows_what_was_masked_never_the_secret(tmp_path: Path, cli) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "deploy.py").write_text(f"GITHUB_TOKEN = \"{GITHUB}\"\n\n\ndef deploy():\n    return GITHUB_TOKEN\n")
    assert cli("rebuild", str(root), "--embedder", "hashing", "--scheduler", "sync").returncode == 0
    proc = cli("why", str(root / "deploy.py"))
    assert proc.returncode == 0, proc.stderr
    assert "redacted: line 1: github-token" in proc.stdout, proc.stdout
    assert GITHUB not in proc.stdout and GITHUB not in proc.stderr
