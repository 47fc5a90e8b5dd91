/* proto_cmds.c: not written yet */
