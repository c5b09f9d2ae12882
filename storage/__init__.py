"""The ground floor every layer shares: where things live and how files are written.

``storage.locations`` is the only module that reads ``MIAR_CACHE`` / ``MIAR_SHARED``;
``storage.files`` holds the one atomic writer and the file digest. Nothing here imports
another package of this project, so extractors, the model and the pipeline can all use it.
"""

__all__: list[str] = []
