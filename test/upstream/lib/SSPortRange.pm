package SSPortRange;
# Keeps the ports Test::TCP picks inside SS_PORT_RANGE (default 19500-19599),
# so the upstream suite never touches ports outside the window tests may use.
use strict;
use warnings;
use Net::EmptyPort ();

my ($LO, $HI) = split /-/, ($ENV{SS_PORT_RANGE} || '19500-19599');
my $cursor = $$ % ($HI - $LO + 1);

no warnings 'redefine';
*Net::EmptyPort::empty_port = sub {
    my ($host, $proto) = ('127.0.0.1', 'tcp');
    if (@_ && ref $_[0] eq 'HASH') {
        $host = $_[0]{host} if $_[0]{host};
        $proto = lc $_[0]{proto} if $_[0]{proto};
    } elsif (@_ > 1 && defined $_[1]) {
        $proto = lc $_[1];
    }
    my $n = $HI - $LO + 1;
    for (1 .. $n) {
        my $port = $LO + $cursor;
        $cursor = ($cursor + 1) % $n;
        next if $proto eq 'tcp' && Net::EmptyPort::check_port($port);
        return $port if Net::EmptyPort::can_bind($host, $port, $proto);
    }
    die "SSPortRange: no free port in $LO-$HI\n";
};

1;
