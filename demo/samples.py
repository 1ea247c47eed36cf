"""Realistic sample inquiries for info@example.com, built with the standard library.

They cover what a real info@ inbox gets and what the provider must handle: a non-ASCII
sender name and subject (RFC 2047), an HTML-only message (turned into readable text),
and a message with an attachment (written to disk by the sensor, never put into XCom).
"""

from __future__ import annotations

import datetime as dt
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

INFO = Address("Info Desk", "info", "example.com")


def _message(
    sender: Address, subject: str, minutes_ago: int, text: str | None, html: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = INFO
    message["Subject"] = subject
    sent = dt.datetime.now(dt.timezone.utc).astimezone() - dt.timedelta(minutes=minutes_ago)
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def sample_inquiries() -> list[EmailMessage]:
    """Four inquiries, oldest first (the order the sensor hands them over)."""
    juergen = _message(
        Address("Jürgen Müller", "juergen.mueller", "example.org"),
        "Preise für 2027",
        minutes_ago=42,
        text=(
            "Guten Tag,\n\n"
            "was kostet die Lizenz für 25 Arbeitsplätze ab Januar 2027?\n"
            "Gibt es einen Rabatt für Schulen?\n\n"
            "Viele Grüße\nJürgen Müller\n"
        ),
    )
    ann = _message(
        Address("Ann Lee", "ann.lee", "example.net"),
        "Could we get a demo next week?",
        minutes_ago=31,
        text=None,
        html=(
            "<html><body><p>Hi team,</p>"
            "<p>We are evaluating tools for our <b>support desk</b> and would love a "
            "30-minute demo next week, ideally Tuesday or Wednesday afternoon.</p>"
            "<p>Thanks,<br>Ann</p></body></html>"
        ),
    )
    priya = _message(
        Address("Priya Raman", "priya", "example.co.uk"),
        "Requirements for a quote",
        minutes_ago=17,
        text=(
            "Hello,\n\n"
            "please find our requirements attached (one line per site).\n"
            "Could you send a quote by Friday?\n\n"
            "Best regards,\nPriya Raman\nProcurement\n"
        ),
    )
    priya.add_attachment(
        b"site,seats,support\nLondon,40,business hours\nLeeds,12,24/7\n",
        maintype="text",
        subtype="csv",
        filename="requirements.csv",
    )
    chen = _message(
        Address("Chen Wei", "chen.wei", "example.com.cn"),
        "Partnership / reseller program?",
        minutes_ago=5,
        text=(
            "Hi,\n\nDo you have a reseller program for the APAC region? "
            "We already distribute two similar products.\n\nChen Wei\n"
        ),
    )
    return [juergen, ann, priya, chen]
