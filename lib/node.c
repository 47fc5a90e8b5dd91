/* node.c: not written yet */
