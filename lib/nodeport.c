/* nodeport.c: not written yet */
