"""The lineage explorer: a read-only local web server over a store, and its packaged assets.

`pages` and `runs` gather what each page shows (one function per page, plain
data, no web framework), `views` turns that into HTML in which every stored string is
escaped text, `server` answers requests (the only module here that imports
the web framework, Bottle) and `workers` makes their pages, a store each. `mlmd-exercise report` reuses `pages` and `views`.
"""
