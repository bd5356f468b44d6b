#!/usr/bin/perl
# bench/parse_sisimai.pl - parse throughput of Sisimai on one core.
#
#     parse_sisimai.pl [--reps N] [--warmup N] --list FILE
#
# Sisimai (Debian's libsisimai-perl) is the feedback-aware mail analyser an
# abuse desk would otherwise pick: it reads bounces and ARF feedback reports
# and returns one record per reported message (reason "feedback" for ARF).
# What its user writes: Sisimai->make($mail, delivered => 1) per mail, every
# record kept and dumped as JSON (as fbl's documents are).
#
# Method as bench_parse and parse_email.py: all mails read into memory first
# (each parsed from a scalar reference, Sisimai's in-memory reader, so no
# file I/O is timed), one untimed warm-up pass, then N timed passes, each
# timed with the process CPU clock (times: user + system) and the wall clock;
# one JSON line per timed pass on stdout with bench_parse's keys. bench/run
# pins the process to one CPU with taskset.
use strict;
use warnings;

use Getopt::Long;
use JSON::PP;
use Sisimai;
use Time::HiRes qw(time);

my ($reps, $warmup, $list) = (3, 1, undef);
GetOptions('reps=i' => \$reps, 'warmup=i' => \$warmup, 'list=s' => \$list)
    or die "usage: parse_sisimai.pl [--reps N] [--warmup N] --list FILE\n";
die "parse_sisimai.pl: --list FILE is required\n" unless defined $list;

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or die "parse_sisimai.pl: $path: $!\n";
    local $/;
    my $data = <$fh>;
    close($fh);
    return $data;
}

open(my $lf, '<', $list) or die "parse_sisimai.pl: $list: $!\n";
my @mails = map { chomp; slurp($_) } grep { /\S/ } <$lf>;
close($lf);
my $total = 0;
$total += length($_) for @mails;

my $json = JSON::PP->new->canonical;
my $best;
for my $rep (-$warmup .. $reps - 1) {
    my ($records, $empty, $outbytes) = (0, 0, 0);
    my @c0 = times;
    my $w0 = time;
    for my $data (@mails) {
        # A mail that is not mbox text must not start with "From " for the
        # memory reader to take it as one message; the corpus' do not.
        my $found = eval { Sisimai->make(\$data, delivered => 1) };
        if (!$found) {
            $empty++;
            next;
        }
        for my $r (@$found) {
            $records++;
            $outbytes += length($r->dump('json'));
        }
    }
    my @c1 = times;
    my $cpu = ($c1[0] + $c1[1]) - ($c0[0] + $c0[1]);
    my $wall = time - $w0;
    next if $rep < 0;
    $best = $cpu if !defined $best || $cpu < $best;
    print $json->encode({
        engine => 'sisimai', rep => $rep, mails => scalar(@mails), bytes => $total,
        cpu_s => $cpu + 0.0, wall_s => $wall + 0.0, reports => $records, rejects => $empty,
        headers => 0, outbytes => $outbytes,
    }), "\n";
}
printf STDERR "parse_sisimai: %d mails: %.0f mails/s (best of %d)\n", scalar(@mails),
    @mails / ($best || 1e-9), $reps;
