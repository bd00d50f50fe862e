"""Tests for addon.crm.csvio: decoding uploads, parsing rows, guessing mappings, safe export."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.crm import csvio
from addon.crm.csvio import (
    FULL_NAME_KEY,
    MAX_COLUMNS,
    CsvRow,
    FieldChoice,
    ParsedCsv,
    decode_csv_bytes,
    escape_cell,
    guess_mapping,
    read_rows,
    write_csv,
)
from addon.crm.defaults import DEFAULT_FOLDERS

PROPERTY = settings(max_examples=300, deadline=None, database=None)


def folder_fields(folder: str) -> list[FieldChoice]:
    for key, _name, _singular, specs in DEFAULT_FOLDERS:
        if key == folder:
            return [FieldChoice(spec[0], spec[1], spec[2]) for spec in specs]
    raise KeyError(folder)


CONTACTS = folder_fields("contacts")
COMPANIES = folder_fields("companies")
DEALS = folder_fields("deals")


def named_mapping(header: list[str], fields: list[FieldChoice]) -> dict[str, str]:
    return {header[i]: key for i, key in guess_mapping(header, fields).items()}


def cells(parsed: ParsedCsv) -> list[list[str]]:
    return [row.values for row in parsed.rows]


def messages(parsed: ParsedCsv) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in parsed.problems]


# ------------------------------------------------------------------------------------------
# decode_csv_bytes
# ------------------------------------------------------------------------------------------

SAMPLE = "Name,City\r\nMüller,Köln\r\nZoë,€ 5\r\n"
SAMPLE_NORMALISED = "Name,City\nMüller,Köln\nZoë,€ 5\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SAMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + SAMPLE.encode("utf-32-le"), "utf-32"),
        (codecs.BOM_UTF32_BE + SAMPLE.encode("utf-32-be"), "utf-32"),
        (SAMPLE.encode("utf-16-le"), "utf-16-le"),
        (SAMPLE.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf32le-bom", "utf32be-bom",
         "utf16le-nobom", "utf16be-nobom"],
)  # fmt: skip
def test_decodes_unicode_encodings(data: bytes, encoding: str) -> None:
    decoded = decode_csv_bytes(data)
    assert decoded.text == SAMPLE_NORMALISED
    assert decoded.encoding == encoding
    assert decoded.warnings == []
    # The reported codec reads the original bytes, BOM included.
    assert data.decode(decoded.encoding).replace("\r\n", "\n") == SAMPLE_NORMALISED


def test_cp1252_from_excel_on_windows() -> None:
    decoded = decode_csv_bytes("Name;Betrag\r\nMüller;€ 12,50\r\n".encode("cp1252"))
    assert decoded.text == "Name;Betrag\nMüller;€ 12,50\n"
    assert decoded.encoding == "cp1252"
    assert len(decoded.warnings) == 1
    assert "Windows-1252" in decoded.warnings[0]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1() -> None:
    # 0x81 is neither valid UTF-8 here nor defined in cp1252.
    decoded = decode_csv_bytes(b"a,b\n\x81\xe9,c\n")
    assert decoded.encoding == "latin-1"
    assert decoded.text == "a,b\n\x81é,c\n"
    assert "Latin-1" in decoded.warnings[0]


def test_utf8_cut_in_the_middle_of_a_character_stays_utf8() -> None:
    decoded = decode_csv_bytes("a,b\nZoë,é".encode()[:-1])
    assert decoded.encoding == "utf-8"
    assert decoded.text == "a,b\nZoë,\ufffd"
    assert decoded.warnings


def test_bom_that_lies_is_replaced_not_raised() -> None:
    decoded = decode_csv_bytes(codecs.BOM_UTF8 + b"a,\xff\n")
    assert decoded.encoding == "utf-8-sig"
    assert decoded.text == "a,\ufffd\n"
    assert decoded.warnings


def test_nul_bytes_are_stripped_with_a_warning() -> None:
    decoded = decode_csv_bytes(b"a,b\n1\x00,2\x00\x00\n")
    assert decoded.text == "a,b\n1,2\n"
    assert decoded.encoding == "utf-8"
    assert decoded.warnings == [
        "Removed 3 NUL characters: the file may be damaged or not a CSV file."
    ]


def test_newlines_are_normalised() -> None:
    assert decode_csv_bytes(b"a\r\nb\rc\nd").text == "a\nb\nc\nd"


def test_empty_and_oversized_input() -> None:
    assert decode_csv_bytes(b"") == csvio.DecodedText(text="", encoding="utf-8", warnings=[])


def test_oversized_input_gets_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "MAX_IMPORT_BYTES", 4)
    assert decode_csv_bytes(b"a,b\n1,2\n").warnings[0].startswith("The file is larger than")


# ------------------------------------------------------------------------------------------
# read_rows: delimiters
# ------------------------------------------------------------------------------------------


def test_comma() -> None:
    parsed = read_rows("Name,Email\nAnna,anna@example.com\nBob,bob@example.com\n")
    assert parsed.delimiter == ","
    assert parsed.header == ["Name", "Email"]
    assert parsed.rows == [
        CsvRow(line=2, values=["Anna", "anna@example.com"]),
        CsvRow(line=3, values=["Bob", "bob@example.com"]),
    ]
    assert parsed.problems == []


def test_semicolon_with_decimal_commas() -> None:
    # Excel in German/French locales: ";" between cells, "," in numbers.
    parsed = read_rows("Name;Betrag;Menge\nMüller;12,50;3\nDupont;1.234,75;10,5\n")
    assert parsed.delimiter == ";"
    assert parsed.header == ["Name", "Betrag", "Menge"]
    assert cells(parsed) == [["Müller", "12,50", "3"], ["Dupont", "1.234,75", "10,5"]]
    assert parsed.problems == []


def test_semicolon_when_every_row_has_a_decimal_comma() -> None:
    parsed = read_rows("Name;Amount\nA;1,5\nB;2,5\nC;3,5\n")
    assert parsed.delimiter == ";"
    assert cells(parsed) == [["A", "1,5"], ["B", "2,5"], ["C", "3,5"]]


def test_tab() -> None:
    parsed = read_rows("Name\tAddress\nAnna\t1 Main St, Springfield\n")
    assert parsed.delimiter == "\t"
    assert cells(parsed) == [["Anna", "1 Main St, Springfield"]]


def test_pipe() -> None:
    parsed = read_rows("Name|Tags\nAnna|a,b;c\nBob|d\n")
    assert parsed.delimiter == "|"
    assert cells(parsed) == [["Anna", "a,b;c"], ["Bob", "d"]]


def test_comma_with_semicolons_in_cells() -> None:
    parsed = read_rows("Name,Tags\nAnna,x;y;z\nBob,w\n")
    assert parsed.delimiter == ","
    assert cells(parsed) == [["Anna", "x;y;z"], ["Bob", "w"]]


def test_quoted_header_with_other_delimiter_inside() -> None:
    parsed = read_rows('"Name; First","Amount"\n"A; B",1\n')
    assert parsed.delimiter == ","
    assert parsed.header == ["Name; First", "Amount"]


def test_excel_sep_line_names_the_delimiter() -> None:
    parsed = read_rows("sep=;\nName;Amount\nA,B;1\n")
    assert parsed.delimiter == ";"
    assert parsed.header == ["Name", "Amount"]
    assert parsed.rows == [CsvRow(line=3, values=["A,B", "1"])]


def test_single_column_file() -> None:
    parsed = read_rows("Email\na@example.com\nb@example.com\n")
    assert parsed.header == ["Email"]
    assert cells(parsed) == [["a@example.com"], ["b@example.com"]]


# ------------------------------------------------------------------------------------------
# read_rows: cells, rows and line numbers
# ------------------------------------------------------------------------------------------


def test_quoted_fields_with_newlines_commas_and_quotes() -> None:
    text = 'Name,Notes,Size\n"Smith, Anna","said ""hi""\nthen left",27" screen\n'
    parsed = read_rows(text)
    assert cells(parsed) == [["Smith, Anna", 'said "hi"\nthen left', '27" screen']]


def test_line_numbers_with_multiline_cells_and_blank_lines() -> None:
    text = (
        "Name,Notes\n"  # 1
        'A,"one\n'  # 2
        "two\n"  # 3
        'three"\n'  # 4
        "\n"  # 5
        "B,plain\n"  # 6
        ',"\n'  # 7
        '"\n'  # 8  (a row whose only content is a newline: blank, skipped)
        'C,"x\r\ny"\n'  # 9-10
        "D,last"  # 11, no final newline
    )
    parsed = read_rows(text)
    assert [(row.line, row.values) for row in parsed.rows] == [
        (2, ["A", "one\ntwo\nthree"]),
        (6, ["B", "plain"]),
        (9, ["C", "x\ny"]),
        (11, ["D", "last"]),
    ]
    assert parsed.problems == []


def test_whitespace_around_cells_and_header_names_is_stripped() -> None:
    parsed = read_rows("\ufeff  Name ,\tEmail\u00a0\n  Anna  , a@example.com \n")
    assert parsed.header == ["Name", "Email"]
    assert cells(parsed) == [["Anna", "a@example.com"]]


def test_space_before_a_quoted_cell() -> None:
    parsed = read_rows('a,b,c\n1, "2,5" ,3\n')
    assert cells(parsed) == [["1", "2,5", "3"]]


def test_blank_rows_are_skipped_silently() -> None:
    parsed = read_rows("\n\nName,Email\n\n , \n,,,\nAnna,a@x.org\n\n")
    assert parsed.header == ["Name", "Email"]
    assert parsed.rows == [CsvRow(line=7, values=["Anna", "a@x.org"])]
    assert parsed.problems == []


def test_ragged_rows() -> None:
    text = "a,b,c,d,e\n1,2\n1,2,3,4,5,6,7\n1,2,3,4,5,,\n"
    parsed = read_rows(text)
    assert cells(parsed) == [
        ["1", "2", "", "", ""],
        ["1", "2", "3", "4", "5"],
        ["1", "2", "3", "4", "5"],
    ]
    # Trailing empty cells (Excel pads rows) are not worth a problem.
    assert messages(parsed) == [
        (3, "Row has 7 cells, the header has 5; extra cells ignored."),
    ]


def test_duplicate_and_blank_header_names() -> None:
    parsed = read_rows("Email,,Email, email ,Email (2),column 2\n1,2,3,4,5,6\n")
    assert parsed.header == [
        "Email",
        "column 2",
        "Email (3)",
        "email (4)",
        "Email (2)",
        "column 2 (2)",
    ]
    assert cells(parsed) == [["1", "2", "3", "4", "5", "6"]]


def test_huge_field_rejects_the_row() -> None:
    text = "a,b\n1,short\n2," + "x" * 101 + "\n3,ok\n"
    parsed = read_rows(text, max_field_chars=100)
    assert cells(parsed) == [["1", "short"], ["3", "ok"]]
    assert messages(parsed) == [
        (3, "A cell has 101 characters, more than the limit of 100; row skipped.")
    ]


def test_huge_multiline_field_keeps_following_line_numbers_right() -> None:
    text = 'a,b\n1,"' + "x\n" * 200 + '"\n3,ok\n'
    parsed = read_rows(text, max_field_chars=100)
    assert parsed.rows == [CsvRow(line=203, values=["3", "ok"])]
    assert [p.line for p in parsed.problems] == [2]


def test_default_field_limit_is_above_the_csv_module_default() -> None:
    big = "x" * 150_000  # the csv module's own default limit is 131,072
    parsed = read_rows(f"a,b\n1,{big}\n", max_field_chars=200_000)
    assert cells(parsed) == [["1", big]]
    parsed = read_rows(f"a,b\n1,{big}\n")
    assert parsed.rows == []
    assert "limit of 100,000" in parsed.problems[0].message


def test_nul_characters_in_text_do_not_break_parsing() -> None:
    parsed = read_rows("a,b\n1\x00,2\n3,4\n")
    assert cells(parsed) == [["1\x00", "2"], ["3", "4"]]


def test_unterminated_quote_at_end_of_file() -> None:
    parsed = read_rows('a,b\n1,2\n3,"never closed\n4,5\n')
    assert cells(parsed) == [["1", "2"], ["4", "5"]]
    assert messages(parsed) == [(3, 'A quoted cell (") on this row is never closed; row skipped.')]


def test_csv_error_is_a_problem_and_parsing_continues() -> None:
    # With the field limit raised at import, csv.Error is rare; lower it to provoke one.
    saved = csv.field_size_limit()
    csv.field_size_limit(10)
    try:
        parsed = read_rows("a,b\n1,2\n3," + "y" * 20 + "\n5,6\n")
    finally:
        csv.field_size_limit(saved)
    assert cells(parsed) == [["1", "2"], ["5", "6"]]
    assert [p.line for p in parsed.problems] == [3]
    assert "field larger than field limit" in parsed.problems[0].message


def test_field_size_limit_is_raised_once_not_lowered() -> None:
    assert csv.field_size_limit() >= 2**31 - 1


def test_unreadable_header_is_fatal() -> None:
    parsed = read_rows('a,"b\n1,2\n')
    assert parsed.header == []
    assert parsed.rows == []
    assert [p.line for p in parsed.problems] == [1, 1]


def test_empty_text() -> None:
    for text in ("", "\n\n", " , \n"):
        parsed = read_rows(text)
        assert parsed.header == []
        assert parsed.rows == []
        assert messages(parsed) == [(1, "The file is empty: it has no header row.")]


def test_too_many_columns() -> None:
    width = MAX_COLUMNS + 5
    header = ",".join(f"c{i}" for i in range(width))
    row = ",".join(str(i) for i in range(width))
    parsed = read_rows(f"{header}\n{row}\n{row}\n")
    assert len(parsed.header) == MAX_COLUMNS
    assert parsed.header[-1] == f"c{MAX_COLUMNS - 1}"
    assert all(len(r.values) == MAX_COLUMNS for r in parsed.rows)
    assert len(parsed.rows) == 2
    assert messages(parsed) == [(1, f"The file has {width} columns; only the first 200 are read.")]


def test_too_many_rows() -> None:
    text = "a\n1\n2\n\n3\n4\n"
    parsed = read_rows(text, max_rows=2)
    assert cells(parsed) == [["1"], ["2"]]
    assert messages(parsed) == [(5, "The file has more than 2 rows; the rest was not read.")]
    # Exactly at the limit is fine.
    assert read_rows("a\n1\n2\n\n", max_rows=2).problems == []


def test_max_rows_defaults_to_module_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "MAX_ROWS", 1)
    parsed = read_rows("a\n1\n2\n")
    assert cells(parsed) == [["1"]]
    assert len(parsed.problems) == 1


def test_too_large_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "MAX_IMPORT_BYTES", 10)
    parsed = read_rows("a,b\n1,2\n3,4\n")
    assert parsed.header == []
    assert parsed.problems[0].message.startswith("The file is larger than")


def test_decode_then_read_cp1252_semicolon_file() -> None:
    data = "Vorname;Nachname;Umsatz\r\nJürgen;Müller;1.234,56 €\r\n".encode("cp1252")
    parsed = read_rows(decode_csv_bytes(data).text)
    assert parsed.header == ["Vorname", "Nachname", "Umsatz"]
    assert cells(parsed) == [["Jürgen", "Müller", "1.234,56 €"]]


def test_decode_then_read_utf16_tab_file() -> None:
    # Excel's "Unicode Text" export: UTF-16 LE with BOM, tab-separated.
    data = codecs.BOM_UTF16_LE + "Name\tEmail\r\nZoë\tz@x.org\r\n".encode("utf-16-le")
    parsed = read_rows(decode_csv_bytes(data).text)
    assert parsed.delimiter == "\t"
    assert cells(parsed) == [["Zoë", "z@x.org"]]


# ------------------------------------------------------------------------------------------
# guess_mapping
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            ["First name", "Last name", "Email", "Phone", "Job title", "Company", "Owner",
             "Lifecycle stage", "Lead source"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lifecycle_stage", "lead_source"],
            id="english",
        ),
        pytest.param(
            ["Vorname", "Nachname", "E-Mail-Adresse", "Telefon", "Position", "Unternehmen",
             "Besitzer", "Leadquelle"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="german",
        ),
        pytest.param(
            ["Prénom", "Nom", "Adresse e-mail", "Téléphone", "Fonction", "Société",
             "Propriétaire", "Source du lead"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="french",
        ),
        pytest.param(
            ["Nombre", "Apellido(s)", "Correo electrónico", "Teléfono", "Cargo", "Empresa",
             "Propietario", "Origen"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="spanish",
        ),
        pytest.param(
            ["Nome", "Sobrenome", "E-mail", "Telefone", "Cargo", "Empresa", "Responsável",
             "Origem"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="portuguese",
        ),
        pytest.param(
            ["Nome", "Cognome", "Indirizzo email", "Telefono", "Ruolo", "Azienda",
             "Proprietario", "Fonte"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="italian",
        ),
        pytest.param(
            ["Voornaam", "Achternaam", "E-mailadres", "Telefoonnummer", "Functie", "Bedrijf",
             "Eigenaar", "Bron"],
            ["first_name", "last_name", "emails", "phones", "job_title", "company", "owner",
             "lead_source"],
            id="dutch",
        ),
    ],
)  # fmt: skip
def test_contact_columns_in_each_language(header: list[str], expected: list[str]) -> None:
    assert guess_mapping(header, CONTACTS) == dict(enumerate(expected))


def test_google_contacts_export() -> None:
    header = [
        "Name", "Given Name", "Additional Name", "Family Name", "Nickname",
        "E-mail 1 - Type", "E-mail 1 - Value", "E-mail 2 - Type", "E-mail 2 - Value",
        "Phone 1 - Type", "Phone 1 - Value", "Organization 1 - Name", "Organization 1 - Title",
        "Website 1 - Value",
    ]  # fmt: skip
    assert named_mapping(header, CONTACTS) == {
        "Given Name": "first_name",
        "Family Name": "last_name",
        "E-mail 1 - Value": "emails",
        "E-mail 2 - Value": "emails",
        "Phone 1 - Value": "phones",
        "Organization 1 - Name": "company",
        "Organization 1 - Title": "job_title",
    }


def test_new_google_contacts_export() -> None:
    header = [
        "First Name", "Middle Name", "Last Name", "E-mail 1 - Label", "E-mail 1 - Value",
        "Phone 1 - Label", "Phone 1 - Value", "Organization Name", "Organization Title",
    ]  # fmt: skip
    assert named_mapping(header, CONTACTS) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "E-mail 1 - Value": "emails",
        "Phone 1 - Value": "phones",
        "Organization Name": "company",
        "Organization Title": "job_title",
    }


def test_outlook_export() -> None:
    header = [
        "First Name", "Middle Name", "Last Name", "Title", "Suffix", "Company", "Department",
        "Job Title", "Business Street", "Business Phone", "Business Phone 2", "Home Phone",
        "Mobile Phone", "Business Fax", "E-mail Address", "E-mail Display Name",
        "E-mail 2 Address", "Web Page",
    ]  # fmt: skip
    assert named_mapping(header, CONTACTS) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Company": "company",
        # Outlook's "Title" is "Mr."/"Dr.": the strong "Job Title" takes the field.
        "Job Title": "job_title",
        "Business Phone": "phones",
        "Business Phone 2": "phones",
        "Home Phone": "phones",
        "Mobile Phone": "phones",
        "E-mail Address": "emails",
        "E-mail 2 Address": "emails",
    }


def test_german_outlook_export() -> None:
    header = [
        "Vorname", "Weitere Vornamen", "Nachname", "Titel", "Firma", "Abteilung", "Position",
        "Telefon geschäftlich", "Mobiltelefon", "E-Mail-Adresse", "E-Mail 2: Adresse",
    ]  # fmt: skip
    assert named_mapping(header, CONTACTS) == {
        "Vorname": "first_name",
        "Nachname": "last_name",
        "Firma": "company",
        "Position": "job_title",
        "Telefon geschäftlich": "phones",
        "Mobiltelefon": "phones",
        "E-Mail-Adresse": "emails",
        "E-Mail 2: Adresse": "emails",
    }


def test_hubspot_exports() -> None:
    contacts = [
        "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number",
        "Job Title", "Company Name", "Contact owner", "Lifecycle Stage", "Lead Status",
        "Original Source", "Create Date",
    ]  # fmt: skip
    assert named_mapping(contacts, CONTACTS) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "emails",
        "Phone Number": "phones",
        "Mobile Phone Number": "phones",
        "Job Title": "job_title",
        "Company Name": "company",
        "Contact owner": "owner",
        "Lifecycle Stage": "lifecycle_stage",
        "Original Source": "lead_source",
    }
    companies = ["Record ID", "Company name", "Company Domain Name", "Industry",
                 "Number of Employees", "Company owner"]  # fmt: skip
    assert named_mapping(companies, COMPANIES) == {
        "Company name": "name",
        "Company Domain Name": "domain",
        "Industry": "industry",
        "Number of Employees": "size",
        "Company owner": "owner",
    }
    deals = ["Deal Name", "Deal Stage", "Amount", "Close Date", "Deal owner", "Pipeline",
             "Priority", "Associated Company"]  # fmt: skip
    assert named_mapping(deals, DEALS) == {
        "Deal Name": "name",
        "Deal Stage": "stage",
        "Amount": "amount",
        "Close Date": "close_date",
        "Deal owner": "owner",
        "Priority": "priority",
        "Associated Company": "company",
    }


def test_hubspot_lead_status_stands_in_for_missing_lifecycle_stage() -> None:
    assert named_mapping(["Email", "Lead Status"], CONTACTS) == {
        "Email": "emails",
        "Lead Status": "lifecycle_stage",
    }


def test_salesforce_exports() -> None:
    contacts = ["Salutation", "First Name", "Last Name", "Title", "Account Name", "Email",
                "Phone", "Mobile", "Lead Source", "Contact Owner", "Mailing City"]  # fmt: skip
    assert named_mapping(contacts, CONTACTS) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Title": "job_title",
        "Account Name": "company",
        "Email": "emails",
        "Phone": "phones",
        "Mobile": "phones",
        "Lead Source": "lead_source",
        "Contact Owner": "owner",
    }
    accounts = ["Account Name", "Website", "Industry", "Employees", "Account Owner"]
    assert named_mapping(accounts, COMPANIES) == {
        "Account Name": "name",
        "Website": "domain",
        "Industry": "industry",
        "Employees": "size",
        "Account Owner": "owner",
    }
    opportunities = ["Opportunity Name", "Account Name", "Stage", "Amount", "Close Date",
                     "Opportunity Owner"]  # fmt: skip
    assert named_mapping(opportunities, DEALS) == {
        "Opportunity Name": "name",
        "Account Name": "company",
        "Stage": "stage",
        "Amount": "amount",
        "Close Date": "close_date",
        "Opportunity Owner": "owner",
    }


@pytest.mark.parametrize(
    ("header", "fields", "expected"),
    [
        (["Unternehmensgröße", "Branche", "Webseite"], COMPANIES, ["size", "industry", "domain"]),
        (["Taille", "Secteur", "Site web"], COMPANIES, ["size", "industry", "domain"]),
        (["Tamaño", "Sector", "Sitio web"], COMPANIES, ["size", "industry", "domain"]),
        (["Etapa", "Importe", "Fecha de cierre", "Prioridad"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
        (["Phase", "Betrag", "Abschlussdatum", "Priorität"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
        (["Étape", "Montant", "Date de clôture", "Priorité"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
        (["Fase", "Valor", "Data de fechamento", "Prioridade"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
        (["Fase", "Importo", "Data di chiusura", "Priorità"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
        (["Fase", "Bedrag", "Sluitingsdatum", "Prioriteit"], DEALS,
         ["stage", "amount", "close_date", "priority"]),
    ],
)  # fmt: skip
def test_company_and_deal_columns_in_other_languages(
    header: list[str], fields: list[FieldChoice], expected: list[str]
) -> None:
    assert guess_mapping(header, fields) == dict(enumerate(expected))


def test_accent_case_and_punctuation_insensitive() -> None:
    header = ["PRENOM", "nom de famille", "E_MAIL", "e-mail adresse", "TELEPHONE", "Société!"]
    assert guess_mapping(header, CONTACTS) == {
        0: "first_name",
        1: "last_name",
        2: "emails",
        3: "emails",
        4: "phones",
        5: "company",
    }
    fullwidth_email = "\uff25\uff2d\uff21\uff29\uff2c"  # "EMAIL" in fullwidth letters
    assert guess_mapping(["  first_NAME  ", fullwidth_email], CONTACTS) == {
        0: "first_name",
        1: "emails",
    }


def test_exact_label_wins_over_synonyms() -> None:
    fields = [*CONTACTS, FieldChoice("mobile_note", "Mobile", "text")]
    # "Mobile" is a phone synonym, but a field labelled "Mobile" is an exact match.
    assert guess_mapping(["Phone", "Mobile"], fields) == {0: "phones", 1: "mobile_note"}
    # Exact match by key too.
    assert guess_mapping(["mobile_note"], fields) == {0: "mobile_note"}


def test_exact_match_wins_even_from_a_later_column() -> None:
    assert guess_mapping(["Position", "Job title"], CONTACTS) == {1: "job_title"}
    assert guess_mapping(["Title", "Position"], CONTACTS) == {1: "job_title"}


def test_each_single_valued_field_is_mapped_once() -> None:
    header = ["First name", "Vorname", "Company", "Organization", "Owner", "Owner"]
    assert guess_mapping(header, CONTACTS) == {0: "first_name", 2: "company", 4: "owner"}


def test_several_email_and_phone_columns_feed_one_field() -> None:
    header = ["Work email", "Personal email", "Mobile", "Home phone", "Emails"]
    assert guess_mapping(header, CONTACTS) == {
        0: "emails",
        1: "emails",
        2: "phones",
        3: "phones",
        4: "emails",
    }


def test_unknown_and_blank_columns_are_left_out() -> None:
    assert guess_mapping(["Favourite colour", "", "---", "Email"], CONTACTS) == {3: "emails"}


def test_only_fields_of_the_folder_are_guessed() -> None:
    # Contacts have no domain or amount field.
    assert guess_mapping(["Website", "Amount", "Email"], CONTACTS) == {2: "emails"}


def test_full_name_pseudo_key() -> None:
    for name in ("Name", "Full name", "Nom complet", "Vollständiger Name", "Nombre completo"):
        assert guess_mapping([name, "Email"], CONTACTS) == {0: FULL_NAME_KEY, 1: "emails"}
    # With separate name columns the full name is not needed.
    assert guess_mapping(["Full name", "First name", "Last name"], CONTACTS) == {
        1: "first_name",
        2: "last_name",
    }
    assert guess_mapping(["Name", "Family name"], CONTACTS) == {1: "last_name"}
    # A folder without first/last name never gets the pseudo key; "Name" is its own field.
    assert guess_mapping(["Name", "Full name"], COMPANIES) == {0: "name"}
    assert guess_mapping(["Full name"], DEALS) == {}


def test_company_name_feeds_company_link_or_company_name() -> None:
    assert guess_mapping(["Company name"], CONTACTS) == {0: "company"}
    assert guess_mapping(["Company name"], COMPANIES) == {0: "name"}
    assert guess_mapping(["Deal name", "Company name"], DEALS) == {0: "name", 1: "company"}


def test_custom_folder_email_field_takes_email_synonyms() -> None:
    fields = [
        FieldChoice("full", "Person", "text"),
        FieldChoice("work_email", "Work address", "email"),
        FieldChoice("tel", "Telephone", "phone"),
    ]
    assert guess_mapping(["E-mail Address", "Handy", "Person"], fields) == {
        0: "work_email",
        1: "tel",
        2: "full",
    }


def test_custom_field_labelled_like_a_canonical_field_takes_its_synonyms() -> None:
    fields = [FieldChoice("given", "First name", "text"), FieldChoice("org", "Company", "text")]
    assert guess_mapping(["Vorname", "Firma"], fields) == {0: "given", 1: "org"}


def test_no_phrase_is_a_strong_synonym_of_two_fields_of_one_folder() -> None:
    for _key, _name, _singular, specs in DEFAULT_FOLDERS:
        keys = {spec[0] for spec in specs} | {FULL_NAME_KEY}
        for phrase, scores in csvio._PHRASES.items():
            strong = [k for k, score in scores.items() if score == 2 and k in keys]
            assert len(strong) <= 1, (phrase, strong)


# ------------------------------------------------------------------------------------------
# write_csv / escape_cell
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("\tx", "'\tx"),
        ("\r=1", "'\r=1"),
        ("  =1+1", "'  =1+1"),
        ("\n@x", "'\n@x"),
        ("\x00=1", "'\x00=1"),
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("-", "'-"),
        ("+", "'+"),
        ("+49 A1", "'+49 A1"),
        ("-1e5", "'-1e5"),
        ("+1\n=1", "'+1\n=1"),
    ],
)
def test_escape_cell_defuses_formulas(value: str, escaped: str) -> None:
    assert escape_cell(value) == escaped


@pytest.mark.parametrize(
    "value",
    [
        "+49 30 1234",
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "+33.1.23.45.67.89",
        "-12.5",
        "-12,5",
        "-1,234.56",
        "-.5",
        "-3",
        "",
        "plain",
        "a=b",
        "12-3",
        "'already",
    ],
)
def test_escape_cell_leaves_phone_numbers_negative_numbers_and_text(value: str) -> None:
    assert escape_cell(value) == value


def test_write_csv_format() -> None:
    chunks = list(write_csv(["Name", "Note"], [["Anna", "=1+1"], ["B, C", 'say "hi"\nbye']]))
    assert chunks[0].startswith("\ufeff")
    assert "".join(chunks) == ('\ufeffName,Note\r\nAnna,\'=1+1\r\n"B, C","say ""hi""\nbye"\r\n')
    assert "".join(chunks).encode("utf-8").startswith(codecs.BOM_UTF8)


def test_write_csv_escapes_header_and_none_cells() -> None:
    out = "".join(write_csv(["=evil", "ok"], [[None, "-2+3"], ["+49 30 1234", "-12.5"]]))
    assert out == "\ufeff'=evil,ok\r\n,'-2+3\r\n+49 30 1234,-12.5\r\n"


def test_write_csv_streams_in_chunks() -> None:
    rows = ([f"name {i}", "x" * 100] for i in range(2000))
    chunks = list(write_csv(["a", "b"], rows))
    assert len(chunks) > 2
    parsed = read_rows(decode_csv_bytes("".join(chunks).encode("utf-8")).text)
    assert len(parsed.rows) == 2000
    assert parsed.rows[-1] == CsvRow(line=2001, values=["name 1999", "x" * 100])


def test_write_csv_is_lazy() -> None:
    consumed: list[int] = []

    def rows() -> Iterator[list[str]]:
        for i in range(3):
            consumed.append(i)
            yield [str(i)]

    chunks = write_csv(["a"], rows())
    assert next(chunks) == "\ufeffa\r\n"
    assert consumed == []
    assert "".join(chunks) == "0\r\n1\r\n2\r\n"


def test_round_trip_keeps_the_escaped_form() -> None:
    header = ["Name", "Phone", "Formula"]
    rows = [
        ["Müller, Jürgen", "+49 30 1234", "=cmd|' /C calc'!A0"],
        ['Zoë "Z"', "-12.5", "@SUM(1)"],
        ["multi\nline", "+1+1", "\tTabbed"],
    ]
    data = "".join(write_csv(header, rows)).encode("utf-8")
    decoded = decode_csv_bytes(data)
    assert decoded.encoding == "utf-8-sig"
    parsed = read_rows(decoded.text)
    assert parsed.header == header
    assert cells(parsed) == [
        ["Müller, Jürgen", "+49 30 1234", "'=cmd|' /C calc'!A0"],
        ['Zoë "Z"', "-12.5", "'@SUM(1)"],
        ["multi\nline", "'+1+1", "'\tTabbed"],
    ]
    assert parsed.problems == []


# ------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------

CSVISH_PIECES = [
    b'"', b'""', b",", b";", b"\t", b"|", b"\x00", b"\r", b"\n", b"\r\n", b" ", b"a", b"bc",
    b"=1", b"\xff", b"\xe9", b"\x81", b"\xc3\xa9", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff",
    b"sep=;\n", b"\xe2\x80\xa8", b"\x0b", b"\x1c",
]  # fmt: skip
csvish_bytes = st.lists(st.sampled_from(CSVISH_PIECES), max_size=80).map(b"".join)
csvish_text = st.text(alphabet=st.sampled_from('",;\t| \r\n\x00ab=é\u2028\ufeff'), max_size=200)


def check_parsed(parsed: ParsedCsv) -> None:
    assert all(len(row.values) == len(parsed.header) for row in parsed.rows)
    lines = [row.line for row in parsed.rows]
    assert lines == sorted(set(lines))
    assert all(line >= 1 for line in lines)
    assert all(p.line >= 1 for p in parsed.problems)
    assert all(value == value.strip() for row in parsed.rows for value in row.values)
    # A row is blank only when its content was in extra cells, which a problem reports.
    problem_lines = {p.line for p in parsed.problems}
    assert all(any(row.values) or row.line in problem_lines for row in parsed.rows)
    assert len(set(name.casefold() for name in parsed.header)) == len(parsed.header)
    assert all(parsed.header)


@PROPERTY
@given(st.one_of(st.binary(), csvish_bytes))
def test_any_bytes_decode_and_parse_without_raising(data: bytes) -> None:
    decoded = decode_csv_bytes(data)
    assert "\x00" not in decoded.text
    assert "\r" not in decoded.text
    check_parsed(read_rows(decoded.text))
    check_parsed(read_rows(decoded.text, max_field_chars=3, max_rows=2))


@PROPERTY
@given(csvish_text)
def test_any_text_parses_without_raising(text: str) -> None:
    check_parsed(read_rows(text))
    check_parsed(read_rows(text, max_field_chars=2, max_rows=1))


def _as_read_back(cell: str) -> str:
    # What an exported cell looks like after decode/read: NULs dropped, newlines normalised,
    # whitespace stripped; the formula escape is kept.
    escaped = escape_cell(cell).replace("\x00", "")
    return escaped.replace("\r\n", "\n").replace("\r", "\n").strip()


@PROPERTY
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.lists(st.lists(st.text(), min_size=width, max_size=width), max_size=8)
    )
)
def test_export_round_trip_gives_the_escaped_cells(rows: list[list[str]]) -> None:
    width = len(rows[0]) if rows else 2
    header = [f"h{i}" for i in range(width)]
    data = "".join(write_csv(header, rows)).encode("utf-8")
    parsed = read_rows(decode_csv_bytes(data).text)
    expected = [[_as_read_back(cell) for cell in row] for row in rows]
    assert parsed.header == header
    assert cells(parsed) == [row for row in expected if any(row)]
    assert parsed.problems == []
    for row in parsed.rows:
        for value in row.values:
            if value[:1] in ("=", "+", "-", "@"):
                assert escape_cell(value) == value  # only harmless numbers stay unescaped
