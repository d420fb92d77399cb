"""``validate``: an llms.txt (ours or anyone's) checked against the format and, on request, its links.

faults.py     what is reported: a fault's code, line and message
reference.py  the reference parser's reading (PyPI ``llms-txt``), its expressions copied
reading.py    the file read line by line: its parts and its faults (the head here)
sections.py   its sections: each ``##`` heading and its list of links
source.py     a file, a directory of them, or a URL: its text, and how it was served
links.py      every link fetched: answers 200, allowed by robots.txt (bounded, polite)
"""
