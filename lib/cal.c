/* cal.c: not written yet */
