"""decant operators: one module per concern, each registered by name for job files.

A job imports the modules of the operators it names (registry_index.py says which module each is
in; a test checks it) plus the readers and writers; a name the index lacks imports every module.
"""
