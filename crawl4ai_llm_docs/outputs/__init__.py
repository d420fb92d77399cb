"""Every file a run writes from its finished documents.

publish.py         the one call the run makes: every output below, in order
consolidated.py    the consolidated Markdown document and the JSON run report
parts.py           the document split at page boundaries (``--max-file-tokens``)
pages_dir.py       one Markdown file per page (``--pages-dir``)
llms_txt.py        llms.txt and llms-full.txt
llms_txt_sections.py  one llms.txt per section directory (``--llms-txt-per-section``, v2)
site_structure.py, descriptions.py, markdown.py   site name and sections, one-line page
                   descriptions, heading nesting and anchors
"""
