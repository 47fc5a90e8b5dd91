/* page.h - the page at GET / (page.html, embedded at build time by
 * embed.py): one self-contained HTML document that draws the live mesh
 * from /mesh.json. */
#ifndef AEMP_OBSERVE_PAGE_H
#define AEMP_OBSERVE_PAGE_H

#include <stddef.h>

extern const char page_html[];
extern const size_t page_html_len;

#endif
