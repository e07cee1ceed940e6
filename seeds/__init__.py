"""The seed articles khabar indexes into an empty store on first use.

A package only so that a wheel ships them (``khabar.seeds``); the articles are the
other files of this folder.
"""
