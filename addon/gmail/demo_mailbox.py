"""The demo mailbox of the local simulator: realistic threads matching the demo CRM data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from addon.gmail.fake_server import FakeMessage, encode_header_word, rfc2822_date

# (thread key, from, to, cc, subject, snippet, extra headers); the user is rep@<domain>.
Row = tuple[str, str, str, str, str, str, dict[str, str]]


def _rows(domain: str) -> list[Row]:
    me = f"Robin Rep <rep@{domain}>"
    sam = f"Sam Taylor <sam@{domain}>"
    lee = f"Lee Chen <lee@{domain}>"
    newsletter = {
        "List-Id": "SaaS Weekly <weekly.saasweekly.com>",
        "List-Unsubscribe": "<https://saasweekly.com/u/123>",
        "Precedence": "bulk",
    }
    return [
        (
            "acme-renewal",
            "Alice Martin <alice.martin@acme.com>",
            me,
            "",
            "Renewal terms for 2027",
            "Hi Robin, attached are our comments on the renewal terms…",
            {},
        ),
        (
            "acme-renewal",
            me,
            "Alice Martin <alice.martin@acme.com>",
            sam,
            "Re: Renewal terms for 2027",
            "Thanks Alice, we can do a 3-year term at…",
            {},
        ),
        (
            "acme-renewal",
            "Alice Martin <alice.martin@acme.com>",
            me,
            "Tom Becker <tom.becker@acme.com>",
            "Re: Renewal terms for 2027",
            "Looping in Tom from procurement.",
            {},
        ),
        (
            "acme-invoice",
            "Accounts Payable <ap@acme.com>",
            me,
            "",
            "Invoice INV-2291 query",
            "Could you resend the invoice with our PO number?",
            {},
        ),
        (
            "globex-pilot",
            "Bob Nguyen <bob@globex.io>",
            me,
            "",
            "Pilot kickoff next week",
            "Looking forward to the pilot! Can we start on Tuesday?",
            {},
        ),
        (
            "globex-pilot",
            me,
            "Bob Nguyen <bob@globex.io>",
            "",
            "Re: Pilot kickoff next week",
            "Tuesday works. Agenda below.",
            {},
        ),
        (
            "globex-security",
            "Security Team <security@globex.io>",
            me,
            "Bob Nguyen <bob@globex.io>",
            "Security questionnaire",
            "Please fill in the attached questionnaire.",
            {},
        ),
        (
            "initech",
            f"{encode_header_word('Jürgen Weiß')} <juergen.weiss@initech.de>",
            me,
            "",
            "Angebot für das Onboarding",
            "Guten Tag, anbei unser Feedback zum Angebot…",
            {},
        ),
        (
            "initech",
            me,
            f"{encode_header_word('Jürgen Weiß')} <juergen.weiss@initech.de>",
            "",
            "Re: Angebot für das Onboarding",
            "Vielen Dank, Herr Weiß!",
            {},
        ),
        (
            "umbrella",
            f"{encode_header_word('Chloé Dubois')} <chloe.dubois@umbrella-health.fr>",
            me,
            "",
            "Demande de démonstration",
            "Bonjour, nous aimerions organiser une démo…",
            {},
        ),
        (
            "dana",
            "Dana Kim <dana.kim@gmail.com>",
            me,
            "",
            "Coffee next week?",
            "Happy to introduce you to two founders.",
            {},
        ),
        (
            "northwind",
            "Priya Raman <priya.raman@northwind-traders.com>",
            me,
            "",
            "Question about your pricing",
            "Hello, we are evaluating CRMs for a 40-person sales team…",
            {},
        ),
        (
            "northwind",
            me,
            "Priya Raman <priya.raman@northwind-traders.com>",
            "",
            "Re: Question about your pricing",
            "Hi Priya, happy to help. Our plans…",
            {},
        ),
        (
            "sakura",
            f"{encode_header_word('佐藤 健二')} <k.sato@sakura-logistics.jp>",
            me,
            "",
            f"{encode_header_word('お見積りのお願い')}",
            "いつもお世話になっております。",
            {},
        ),
        (
            "iberica",
            f"{encode_header_word('María José García')} <mj.garcia@iberica-foods.es>",
            me,
            "",
            "Solicitud de información",
            "Buenos días, quisiéramos más información…",
            {},
        ),
        (
            "severstal",
            f"{encode_header_word('Ольга Иванова')} <olga@severstal-tech.ru>",
            me,
            "",
            f"{encode_header_word('Вопрос по интеграции')}",
            "Здравствуйте! Подскажите, пожалуйста…",
            {},
        ),
        (
            "muller",
            '"Müller, Hans" <hans.mueller@bücher.de>',
            me,
            "",
            "Ihre Anfrage",
            "Sehr geehrte Damen und Herren…",
            {},
        ),
        (
            "fabrikam",
            "Marco Rossi <marco.rossi@fabrikam.it>",
            me,
            "Giulia Bianchi <giulia@fabrikam.it>",
            "Partnership proposal",
            "Ciao Robin, we would like to propose a partnership.",
            {},
        ),
        (
            "contoso",
            "Emma Johnson <emma.johnson@contoso.co.uk>",
            me,
            "",
            "Referral from Alice Martin",
            "Alice suggested I get in touch about your product.",
            {},
        ),
        (
            "team-forecast",
            sam,
            me,
            lee,
            "Q4 forecast review",
            "Can we go through the forecast before Friday?",
            {},
        ),
        ("team-forecast", me, sam, lee, "Re: Q4 forecast review", "Sure, Thursday 10:00?", {}),
        (
            "team-lunch",
            lee,
            f"Sales team <sales@{domain}>",
            "",
            "Team lunch on Friday",
            "Pizza or sushi?",
            {},
        ),
        (
            "newsletter-1",
            "SaaS Weekly <newsletter@saasweekly.com>",
            me,
            "",
            "The 10 best onboarding emails of the year",
            "This week: onboarding, churn and pricing pages…",
            newsletter,
        ),
        (
            "newsletter-2",
            "SaaS Weekly <newsletter@saasweekly.com>",
            me,
            "",
            "Pricing pages that convert",
            "Plus: a teardown of three pricing pages…",
            newsletter,
        ),
        (
            "github",
            "GitHub <noreply@github.com>",
            me,
            "",
            "[inbox-crm] A new release is available",
            "Release v1.4.0 is now available.",
            {},
        ),
        (
            "stripe",
            "Stripe <no-reply@stripe.com>",
            me,
            "",
            "Your payout is on the way",
            "A payout of $4,210.00 is on the way.",
            {},
        ),
        (
            "bounce",
            "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            me,
            "",
            "Delivery Status Notification (Failure)",
            "Address not found.",
            {},
        ),
        (
            "outbound",
            me,
            "Nina Patel <nina.patel@tailspin-toys.com>, Omar Haddad <omar@tailspin-toys.com>",
            "",
            "Following up on our call",
            "Nina, Omar — great speaking with you today.",
            {},
        ),
        (
            "events",
            "Events Team <events@techsummit.io>",
            me,
            "",
            "Your ticket for Tech Summit",
            "Your ticket is attached.",
            {},
        ),
        (
            "group",
            "Carla Mendes <carla@lumen-analytics.com.br>",
            "undisclosed-recipients:;",
            "",
            "Convite: webinar de vendas",
            "Olá! Você está convidado…",
            {},
        ),
    ]


def demo_messages(domain: str = "example.com", now: datetime | None = None) -> list[FakeMessage]:
    """A few dozen messages across threads, newest last, with RFC 2822 headers."""
    now = now or datetime.now(UTC)
    rows = _rows(domain)
    messages: list[FakeMessage] = []
    for index, (thread, sender, to, cc, subject, snippet, extra) in enumerate(rows):
        sent = now - timedelta(hours=7 * (len(rows) - index))
        message_id = f"demo-{index:03d}"
        headers = [("From", sender), ("To", to)]
        if cc:
            headers.append(("Cc", cc))
        headers += [
            ("Subject", subject),
            ("Date", rfc2822_date(sent)),
            ("Message-ID", f"<{message_id}.{thread}@mail.{domain}>"),
            *extra.items(),
        ]
        labels = ["SENT"] if sender.endswith(f"rep@{domain}>") else ["INBOX", "UNREAD"]
        messages.append(FakeMessage(message_id, f"thread-{thread}", headers, labels, snippet))
    return messages
