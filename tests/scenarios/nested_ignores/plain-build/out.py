# build output beside pyproject.toml
