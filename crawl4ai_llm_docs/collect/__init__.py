"""Stage 5: chunk results to finished documents, in input order whatever order they finish.

stage.py   ``run``: a page's chunks put back together, failures remembered
spool.py   finished documents on disk until the outputs are assembled from them
"""
