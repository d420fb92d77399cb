"""Documentation generators that need more than the generic extraction.

detect.py    which generator wrote a page (meta generator, head comments, body classes)
dom.py       the ``Profile`` shape and the lxml helpers the profiles share
rustdoc.py, javadoc.py, doxygen.py   one profile each: main-content selectors and a clean-up
"""
