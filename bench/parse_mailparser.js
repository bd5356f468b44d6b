#!/usr/bin/env node
/*
 * bench/parse_mailparser.js - parse throughput of Node's mailparser on one core
 *
 *   node parse_mailparser.js [--reps N] [--warmup N] [--list FILE] PATH...
 *
 * What a Node user of mailparser (npm) would write to pull fbl's key fields out
 * of a report mail: simpleParser() (skipping the conversions nobody here needs:
 * skipHtmlToText, skipTextToHtml, skipTextLinks, skipImageLinks), then the From
 * addresses, Subject, Message-ID, Date and the IPs of the Received fields, the
 * URLs of the text and HTML bodies (one regular expression), the name, type and
 * size of every attachment; attachments that are messages (message/rfc822, .eml,
 * text/rfc822-headers) and ARF's message/feedback-report part are parsed again
 * with simpleParser for the same fields (and the ARF fields). mailparser merges
 * an inline message/rfc822 (as ARF sends the spam) into the text and HTML of the
 * mail and keeps none of its headers but a From/Subject/Date/To summary in the
 * text: there it extracts less than the others do.
 *
 * Method as bench_parse: all mails read into memory first, then one untimed
 * warm-up pass and N timed passes, each timed with process.cpuUsage() (user +
 * system, all threads) and the wall clock; one JSON line per timed pass. Run it
 * pinned to one CPU (bench/run uses taskset), so V8's helper threads share it.
 * mailparser is found through NODE_PATH (bench/run installs it with npm).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { simpleParser } = require('mailparser');

const URL_RE = /(?:https?|ftp):\/\/[^\s<>"'()[\]{}]+/gi;
const IP_RE = /\[(?:IPv6:)?([0-9A-Fa-f:.]{3,})\]/g;
const ARF_FIELDS = ['feedback-type', 'source-ip', 'original-mail-from', 'reported-domain'];
const MAX_DEPTH = 8;
const OPTIONS = { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true };

function headerFields(m, out) {
    const rec = {};
    rec.from = m.from && m.from.value ? m.from.value.map(a => (a.address || '').toLowerCase()) : [];
    rec.subject = m.subject === undefined ? null : m.subject;
    rec.message_id = m.messageId ? m.messageId.replace(/^<|>$/g, '') : null;
    rec.date = m.date instanceof Date && !isNaN(m.date) ? m.date.toISOString() : null;
    const ips = [];
    const received = m.headers ? [].concat(m.headers.get('received') || []) : [];
    for (const h of received) {
        for (const x of String(h).matchAll(IP_RE)) {
            ips.push(x[1]);
        }
    }
    rec.received_ips = ips;
    out.messages.push(rec);
}

function urls(text, out) {
    if (typeof text === 'string' && text.length > 0) {
        for (const x of text.matchAll(URL_RE)) {
            out.urls.push(x[0]);
        }
    }
}

async function extract(data, out, depth) {
    const m = await simpleParser(data, OPTIONS);
    headerFields(m, out);
    urls(m.text, out);
    urls(m.html, out);
    for (const a of m.attachments) {
        const type = (a.contentType || '').toLowerCase();
        const name = a.filename || null;
        out.attachments.push({ name, type, size: a.size });
        if (depth >= MAX_DEPTH) {
            continue;
        }
        if (type === 'message/feedback-report') {
            const f = await simpleParser(a.content, OPTIONS);
            const arf = {};
            for (const k of ARF_FIELDS) {
                arf[k] = f.headers.has(k) ? f.headers.get(k) : null;
            }
            out.arf.push(arf);
        } else if (type === 'message/rfc822' || type === 'text/rfc822-headers' ||
            (name !== null && name.toLowerCase().endsWith('.eml'))) {
            await extract(a.content, out, depth + 1);
        }
    }
}

function collect(paths, listFile) {
    const files = [];
    if (listFile) {
        for (const line of fs.readFileSync(listFile, 'utf8').split('\n')) {
            if (line.trim() !== '') {
                files.push(line);
            }
        }
    }
    const walk = p => {
        if (fs.statSync(p).isDirectory()) {
            for (const n of fs.readdirSync(p).sort()) {
                if (!n.startsWith('.')) {
                    walk(path.join(p, n));
                }
            }
        } else {
            files.push(p);
        }
    };
    paths.forEach(walk);
    return files;
}

async function main() {
    const args = process.argv.slice(2);
    let reps = 5;
    let warmup = 1;
    let listFile = null;
    const paths = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--reps') {
            reps = parseInt(args[++i], 10);
        } else if (args[i] === '--warmup') {
            warmup = parseInt(args[++i], 10);
        } else if (args[i] === '--list') {
            listFile = args[++i];
        } else {
            paths.push(args[i]);
        }
    }
    const mails = collect(paths, listFile).map(f => fs.readFileSync(f));
    if (mails.length === 0) {
        console.error('parse_mailparser: no mail given');
        process.exit(64);
    }
    const total = mails.reduce((s, b) => s + b.length, 0);
    let best = null;
    for (let rep = -warmup; rep < reps; rep++) {
        let msgs = 0, nurls = 0, atts = 0, errors = 0;
        const c0 = process.cpuUsage();
        const w0 = process.hrtime.bigint();
        for (const data of mails) {
            const out = { messages: [], arf: [], urls: [], attachments: [] };
            try {
                await extract(data, out, 0);
            } catch (e) {
                errors++;
                continue;
            }
            msgs += out.messages.length;
            nurls += out.urls.length;
            atts += out.attachments.length;
        }
        const c = process.cpuUsage(c0);
        const cpu = (c.user + c.system) / 1e6;
        const wall = Number(process.hrtime.bigint() - w0) / 1e9;
        if (rep < 0) {
            continue;
        }
        best = best === null ? cpu : Math.min(best, cpu);
        console.log(JSON.stringify({
            engine: 'mailparser', rep, mails: mails.length, bytes: total,
            cpu_s: cpu, wall_s: wall, reports: msgs, rejects: errors, headers: 0,
            outbytes: nurls, attachments: atts,
        }));
    }
    console.error(`parse_mailparser: ${mails.length} mails: ${Math.round(mails.length / best)} mails/s (best of ${reps})`);
}

main().catch(e => {
    console.error(e);
    process.exit(70);
});
