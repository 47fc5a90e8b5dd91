#!/usr/bin/perl
# dataconn_peer.pl - the Perl AnyEvent::MP 1.30 end of tests/e2e/dataconn.sh.
#
#   recv NODEID BIND [SEED]     run a node whose function main::put takes
#                               [NAME, SIZE] and a data connection, reads SIZE
#                               bytes and answers "ok SHA256HEX" (the protocol
#                               of `aemp put`); prints "stored NAME SIZE HEX";
#                               BIND "none": no listeners (it dials back);
#                               and main::sink, which reads until the end
#                               and prints "sunk BYTES HEX"
#   send NODEID SEED TARGET FUNC SIZE
#                               connect_to TARGET calling FUNC with
#                               ["perl.bin", SIZE], send SIZE pseudo-random
#                               bytes, check the "ok HEX" answer against our
#                               own SHA-256; prints "sent SIZE HEX" and exits 0
use strict;
use warnings;
use AnyEvent;
use AnyEvent::Handle;
use AnyEvent::MP;
use AnyEvent::MP::Kernel;
use AnyEvent::MP::DataConn;
use Digest::SHA;

$| = 1;
my $mode = shift;

my %keep; # the handles being read (nothing else holds them)

sub main::put {
    my ($name, $size, $hdl) = @_;
    my $sha = Digest::SHA->new(256);
    my $got = 0;
    $keep{$hdl} = $hdl;
    $hdl->on_error(sub { warn "recv error: $_[2]\n"; delete $keep{$_[0]}; $_[0]->destroy });
    $hdl->on_eof(sub { delete $keep{$_[0]}; $_[0]->destroy });
    $hdl->on_read(sub {
        my $h = shift;
        my $n = length $h->{rbuf};
        $n = $size - $got if $n > $size - $got;
        $sha->add(substr $h->{rbuf}, 0, $n, "");
        $got += $n;
        if ($got == $size) {
            my $hex = $sha->hexdigest;
            print "stored $name $size $hex\n";
            $h->on_read(sub { $_[0]{rbuf} = "" });
            $h->push_write("ok $hex\n");
            $got = -1;
        }
    });
}

# [NAME, SIZE] and a data connection: read until the sender's end (the
# stream of tests/e2e/dc_stream.c), print "sunk BYTES HEX" (or "broken ..."
# on an error), close.
sub main::sink {
    my $hdl = $_[-1];
    my $sha = Digest::SHA->new(256);
    my $got = 0;
    $keep{$hdl} = $hdl;
    my $end = sub {
        my ($h, $word) = @_;
        $sha->add($h->{rbuf}); $got += length $h->{rbuf}; $h->{rbuf} = "";
        print "$word $got ", $sha->hexdigest, "\n";
        delete $keep{$h};
        $h->destroy;
    };
    $hdl->on_error(sub { $end->($_[0], "broken") });
    $hdl->on_eof(sub { $end->($_[0], "sunk") });
    $hdl->on_read(sub {
        my $h = shift;
        $got += length $h->{rbuf};
        $sha->add($h->{rbuf});
        $h->{rbuf} = "";
    });
}

if ($mode eq "recv") {
    my ($nodeid, $bind, $seed) = @ARGV; # BIND "none": no listeners, reached through SEED
    configure nodeid => $nodeid, binds => [$bind eq "none" ? () : $bind],
        seeds => [defined $seed ? $seed : ()];
    print "ready\n";
    AE::cv->recv;
} elsif ($mode eq "send") {
    my ($nodeid, $seed, $target, $func, $size) = @ARGV;
    configure nodeid => $nodeid, binds => ["127.0.0.1:0"], seeds => [$seed];
    my $done = AE::cv;
    my $started;
    my $start = sub {
        return if $started++;
        my $port = port;
        mon $port, sub { print "failed: @_\n"; $done->send(1) };
        peval $port, sub {
            AnyEvent::MP::DataConn::connect_to $target, 10, $func, "perl.bin", $size, sub {
                my ($hdl) = @_;
                my $sha = Digest::SHA->new(256);
                my $sent = 0;
                my $block = join "", map chr(($_ * 7 + 3) & 255), 0 .. 65535;
                my $busy; # push_write may call on_drain at once
                my $fill; $fill = sub {
                    return if $busy;
                    $busy = 1;
                    while ($sent < $size && length $hdl->{wbuf} < 1 << 20) {
                        my $n = $size - $sent < 65536 ? $size - $sent : 65536;
                        my $b = substr($block, 0, $n) . "";
                        substr($b, 0, 8) = pack "Q>", $sent if $n >= 8; # every block differs
                        $sha->add($b);
                        $hdl->push_write($b);
                        $sent += $n;
                    }
                    $busy = 0;
                };
                $hdl->on_error(sub { print "failed: $_[2]\n"; $done->send(1) });
                $hdl->on_drain($fill);
                $fill->();
                $hdl->push_read(line => sub {
                    my $hex = $sha->hexdigest;
                    my $want = "ok $hex";
                    if ($_[1] eq $want) { print "sent $size $hex\n"; $done->send(0) }
                    else { print "failed: answer '$_[1]', wanted '$want'\n"; $done->send(1) }
                });
            };
        };
    };
    my $guard = AnyEvent::MP::Kernel::mon_nodes(sub { $start->() if $_[0] eq $target && $_[1] });
    $start->() if AnyEvent::MP::Kernel::node_is_up($target);
    my $t = AE::timer 120, 0, sub { print "failed: timeout\n"; $done->send(1) };
    exit $done->recv;
}
