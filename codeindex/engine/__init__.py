"""Run a plan: the Dask graph of parse and embed tasks, the driver pipeline, the commit and the run report."""
