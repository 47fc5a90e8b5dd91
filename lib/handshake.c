/* handshake.c: not written yet */
