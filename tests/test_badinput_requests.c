/* test_badinput_requests.c - bad input from the network (badinput.h): well-framed but malformed requests to the node port and to Global. */
#include "badinput.h"

/* Well-framed but malformed requests to the node port and to ports that do
 * not exist: dropped, the connection stays and keeps working. */
static void test_malformed_node_port_requests(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    char self[32];
    snprintf(self, sizeof self, "atk-%d", atk_seq);
    static const char *const bad[] = {
        "[\"\"]",
        "[\"\",5]",
        "[\"\",null,1]",
        "[\"\",[\"kil\"]]",
        "[\"\",\"kil\"]",
        "[\"\",\"kil\",5]",
        "[\"\",\"kil\",\"\"]",
        "[\"\",\"kil\",\"nosuch\",\"die\"]",
        "[\"\",\"mon1\"]",
        "[\"\",\"mon1\",7]",
        "[\"\",\"mon1\",\"\"]",
        "[\"\",\"mon0\",{}]",
        "[\"\",\"mon0\",\"never-monitored\"]",
        "[\"\",\"kil0\"]",
        "[\"\",\"kil0\",[]]",
        "[\"\",\"kil0\",\"x\",{\"a\":1}]",
        "[\"\",\"snd\"]",
        "[\"\",\"snd\",5,\"x\"]",
        "[\"\",\"snd\",\"no-hash-mark\",\"x\"]",
        "[\"\",\"snd\",\"#\",\"x\"]",
        "[\"\",\"snd\",\"target#\",\"x\"]",
        "[\"\",\"snd\",\"target#nosuch\"]",
        "[\"\",\"snd_multiple\"]",
        "[\"\",\"snd_multiple\",5,null,[],[5],[\"x\"],[\"target#nosuch\",1]]",
        "[\"\",\"info\"]",
        "[\"\",\"info\",5]",
        "[\"\",\"info\",\"not-a-port-id\"]",
        "[\"\",\"up_nodes\",null]",
        "[\"\",\"known_nodes\",{}]",
        "[\"\",\"time\",[]]",
        "[\"\",\"eval\"]",
        "[\"\",\"eval\",1,2]",
        "[\"\",\"AnyEvent::MP::_spawn\"]",
        "[\"\",\"AnyEvent::MP::_spawn\",5,6]",
        "[\"\",\"AnyEvent::MP::_spawn\",\"s1\",\"No::Such::function\"]",
        "[\"\",\"AnyEvent::MP::_spawn\",\"g1\",\"AnyEvent::MP::Global::connect\"]",
        "[\"\",\"AnyEvent::MP::_spawn\",\"g2\",\"AnyEvent::MP::Global::connect\",\"0\",5]",
        "[\"\",\"AnyEvent::MP::Global::connect\",0,\"x\"]",
        "[\"\",\"No::Such::function\",1,2]",
        "[\"nosuch\",-0,123456789012345678901234567890,1e308,\"\\u00e9\\ud83d\\ude00\"]",
        "[\"nosuch\",1e999]",
        "[\"nosuch\",\"a\\u0000b\"]",
        "[\"nosuch\",\"\xff\xfe\"]",
        "[\"a#b#c\",1]",
        "[\"../../etc/passwd\",1]",
        "[\"\\u0000\",1]",
    };
    CHECK(probe_all(&r, bad, sizeof bad / sizeof bad[0]));
    raw_close(&r);
    CHECK(target_ok());
}

/* The Global rendezvous port fed malformed data by an authenticated peer. */
static void test_malformed_global_requests(void)
{
    setup();
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    char m[512], self[32];
    snprintf(self, sizeof self, "atk-%d", atk_seq);
    snprintf(m, sizeof m,
             "[\"\",\"AnyEvent::MP::_spawn\",\"gx\",\"AnyEvent::MP::Global::connect\",0,\"%s\"]",
             self);
    CHECK(probe_after(&r, m));
    static const char *const bad[] = {
        "[\"gx\"]",
        "[\"gx\",5]",
        "[\"gx\",\"setup\",1,2,3]",
        "[\"gx\",\"addr\"]",
        "[\"gx\",\"addr\",5]",
        "[\"gx\",\"addr\",[1,null,{},[\"x\"],\"\",\"no-port\",\"127.0.0.1:1\"]]",
        "[\"gx\",\"nodes\"]",
        "[\"gx\",\"nodes\",[1,2]]",
        "[\"gx\",\"nodes\",{\"yy\":\"str\"}]",
        "[\"gx\",\"nodes\",{\"ww\":{\"a\":1}}]",
        "[\"gx\",\"nodes\",{\"target\":[\"127.0.0.1:1\"]}]",
        "[\"gx\",\"nodes\",{\"\":[]}]",
        "[\"gx\",\"nodes\",{\"zz\":[1,2]}]",
        "[\"gx\",\"set\"]",
        "[\"gx\",\"set\",{\"g\":5,\"h\":[1,null,\"p#q\"],\"\":[\"x#y\"]}]",
        "[\"gx\",\"find\"]",
        "[\"gx\",\"find\",5]",
        "[\"gx\",\"find\",\"nobody\"]",
        "[\"gx\",\"reg1\"]",
        "[\"gx\",\"reg1\",5,6]",
        "[\"gx\",\"reg1\",\"grp\",\"not-a-port\"]",
        "[\"gx\",\"reg0\",\"grp\",\"never-registered\"]",
        "[\"gx\",\"reg0\",\"nosuchgroup\",\"x#y\"]",
        "[\"gx\",\"seedme1\",1]",
        "[\"gx\",\"seedme0\"]",
        "[\"gx\",\"seedme0\"]",
        "[\"gx\",\"whatever\",{}]",
    };
    CHECK(probe_all(&r, bad, sizeof bad / sizeof bad[0]));
    raw_close(&r);
    /* the Global port dies with the connection; the node goes on */
    CHECK(target_ok());
}

/* Global "nodes" naming a node at an address that cannot even be dialled
 * (port out of range): the node must drop it, not crash. Runs against its
 * own throw-away node so a crash does not take the other tests with it. */
static void test_global_nodes_undialable_address(void)
{
    setup();
    int port = 0;
    pid_t pid = spawn_node("target2", &port);
    CHECK(pid > 0 && port > 0);
    if (pid <= 0 || port <= 0) return;
    int saved = target_port;
    target_port = port;
    struct raw r;
    CHECK_INT(raw_auth(&r, 0), 0);
    char m[512], self[32];
    snprintf(self, sizeof self, "atk-%d", atk_seq);
    snprintf(m, sizeof m,
             "[\"\",\"AnyEvent::MP::_spawn\",\"gy\",\"AnyEvent::MP::Global::connect\",0,\"%s\"]",
             self);
    raw_sends(&r, m);
    raw_sends(&r, "[\"gy\",\"nodes\",{\"vv\":[\"999.1.1.1:99999\"]}]");
    double t = raw_wait_closed(&r, 1);
    if (t >= 0) fprintf(stderr, "# target2 closed the connection after %.3f s\n", t);
    CHECK(t < 0);
    raw_close(&r);
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 20 && w == 0; i++) {
        w = waitpid(pid, &st, WNOHANG);
        if (!w) usleep(50000);
        pump();
    }
    if (w == pid)
        fprintf(stderr, "# target2 died: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECK_INT(w, 0);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    target_port = saved;
    CHECK(target_ok());
}

T_MAIN(T(test_malformed_node_port_requests), T(test_malformed_global_requests),
       T(test_global_nodes_undialable_address), T(test_target_survived_everything))
