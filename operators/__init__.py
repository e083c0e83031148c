"""decant operators: one module per concern, each registered by name for job files.

Every module in this package (and its subpackages) is imported by `engine.operator.load_plugins`,
so adding an operator means adding a module with a `@register`ed class, nothing else.
"""
