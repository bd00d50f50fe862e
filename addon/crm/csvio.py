"""The pure CSV layer of import/export: decode uploads, parse rows, guess mappings, stream exports.

No database and no Flask here: the import/export service calls these functions and turns the
problems they report into messages for the user. Nothing in this module raises on bad input.

Limits (enforced here or, for the byte size, by whoever receives the upload):

- ``MAX_IMPORT_BYTES``: uploads above 50 MB should be refused before decoding; ``read_rows`` refuses
  a text longer than that many characters.
- ``MAX_ROWS``: ``read_rows`` stops after this many data rows (blank rows do not count).
- ``MAX_COLUMNS``: columns beyond this are dropped, with one problem.
- ``MAX_FIELD_CHARS``: a row holding a longer cell is rejected, never silently truncated.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The type csv.reader() returns; typeshed names it, the 3.11 runtime does not export it.
    from _csv import Reader as _CsvReader

MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 200
MAX_FIELD_CHARS = 100_000

# The delimiters we recognise; Excel writes ";" in locales whose decimal separator is ",".
DELIMITERS = (",", ";", "\t", "|")

# The pseudo field key of a "full name" column; the importer splits it into first/last name.
FULL_NAME_KEY = "__full_name"

# csv.field_size_limit is process-global. Lowering it (or setting it per call) could break other
# code reading CSV in the same process, so it is only ever raised, once, at import, to a value no
# real field reaches; read_rows enforces its own, per-call max_field_chars instead. 2**31 - 1 fits
# the C long the csv module stores it in on every platform.
_CSV_FIELD_LIMIT = 2**31 - 1
if csv.field_size_limit() < _CSV_FIELD_LIMIT:
    csv.field_size_limit(_CSV_FIELD_LIMIT)

_MB = MAX_IMPORT_BYTES // (1024 * 1024)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@dataclass
class DecodedText:
    """The text of an upload, the codec that decoded it, and what was repaired on the way."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


# UTF-32 LE must be tried before UTF-16 LE: its BOM (FF FE 00 00) starts with UTF-16 LE's (FF FE).
# The second name is the codec reported: it decodes the original bytes, BOM included.
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)

_UTF16_SAMPLE_BYTES = 4096


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _guess_bomless_utf16(data: bytes) -> str | None:
    # Mostly-ASCII text in UTF-16 has a NUL in every other byte: the high byte of each code unit.
    # Which half holds the NULs tells the byte order. Real 8-bit text almost never contains NULs.
    sample = data[:_UTF16_SAMPLE_BYTES]
    pairs = len(sample) // 2
    if pairs == 0:
        return None
    even_nuls = sample[0 : pairs * 2 : 2].count(0)
    odd_nuls = sample[1 : pairs * 2 : 2].count(0)
    if odd_nuls >= 0.3 * pairs and even_nuls <= 0.05 * pairs:
        return "utf-16-le"
    if even_nuls >= 0.3 * pairs and odd_nuls <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _decode(data: bytes, warnings: list[str]) -> tuple[str, str]:
    bom_fallback: tuple[bytes, str, str] | None = None
    for bom, codec, reported in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), reported
            except UnicodeDecodeError:
                # FF FE 00 00 may also be a UTF-16 LE BOM followed by U+0000: try the next match.
                bom_fallback = bom_fallback or (bom, codec, reported)
    if bom_fallback is not None:
        bom, codec, reported = bom_fallback
        warnings.append(
            f"The file starts with a {reported.upper()} byte-order mark but is not valid "
            f"{reported.upper()}; unreadable characters were replaced with �."
        )
        return data[len(bom) :].decode(codec, errors="replace"), reported

    utf16 = _guess_bomless_utf16(data)
    if utf16 is not None:
        try:
            return data.decode(utf16), utf16
        except UnicodeDecodeError:
            pass  # not UTF-16 after all; the NULs are stripped below with a warning

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        # A UTF-8 file cut short in the middle of a character (a truncated upload) is still
        # UTF-8: reading all of it as Windows-1252 because of its last byte would garble it.
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            warnings.append("The file ends in the middle of a character; it was replaced with �.")
            return data.decode("utf-8", errors="replace"), "utf-8"
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 maps every byte, so this cannot fail.
        warnings.append(
            "The file is neither UTF-8 nor Windows-1252; it was read as Latin-1. "
            "Accented letters may be wrong: save it as “CSV UTF-8” and import it again."
        )
        return data.decode("latin-1"), "latin-1"
    warnings.append(
        "The file is not UTF-8; it was read as Windows-1252 (as Excel saves it on Windows). "
        "If accented letters look wrong, save it as “CSV UTF-8” and import it again."
    )
    return text, "cp1252"


def decode_csv_bytes(data: bytes) -> DecodedText:
    """Decode an uploaded CSV file whatever its encoding; never raises."""
    warnings: list[str] = []
    if len(data) > MAX_IMPORT_BYTES:
        warnings.append(f"The file is larger than {_MB} MB.")
    text, encoding = _decode(data, warnings)
    nuls = text.count("\x00")
    if nuls:
        text = text.replace("\x00", "")
        warnings.append(
            f"Removed {nuls:,} NUL character{'s' if nuls != 1 else ''}: "
            "the file may be damaged or not a CSV file."
        )
    return DecodedText(text=_normalise_newlines(text), encoding=encoding, warnings=warnings)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass
class CsvRow:
    """One data row: the line it starts on (the header is line 1) and one value per column."""

    line: int
    values: list[str]


@dataclass
class RowProblem:
    """Something wrong on a line of the file, in words for the user."""

    line: int
    message: str


@dataclass
class ParsedCsv:
    """The header, the rows kept, the problems found, and the delimiter that was detected."""

    header: list[str]
    rows: list[CsvRow]
    problems: list[RowProblem]
    delimiter: str = ","


# Excel writes and reads a first line "sep=;" naming the delimiter.
_SEP_LINE = re.compile(r"sep=(.) *", re.IGNORECASE)
_SNIFF_LINES = 50
_SNIFF_CHARS = 64 * 1024
_SNIFF_RECORDS = 20
# Recovering from an unclosed quote re-reads the rest of the file; bound how often.
_MAX_QUOTE_RECOVERIES = 20


def _reader(lines: Iterable[str], delimiter: str) -> _CsvReader:
    # An explicit dialect: csv.Sniffer guesses quoting and headers unreliably. skipinitialspace
    # lets `a, "b,c"` read as two cells, as people type it; strict=False reads stray quotes
    # inside unquoted cells (`5" screen`) literally, as Excel does.
    return csv.reader(
        lines,
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,
        strict=False,
        quoting=csv.QUOTE_MINIMAL,
    )


class _LineFeed:
    """Feeds lines to csv.reader from an index, and notes when it ran out."""

    def __init__(self, lines: list[str], start: int) -> None:
        self._lines = lines
        self._next = start
        self.exhausted = False

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self._next >= len(self._lines):
            self.exhausted = True
            raise StopIteration
        line = self._lines[self._next]
        self._next += 1
        return line + "\n"


def _is_blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _sniff_delimiter(lines: list[str], start: int) -> str:
    sample: list[str] = []
    size = 0
    for line in lines[start : start + _SNIFF_LINES]:
        sample.append(line + "\n")
        size += len(line)
        if size > _SNIFF_CHARS:
            break
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        records: list[list[str]] = []
        try:
            for cells in _reader(sample, delimiter):
                if not _is_blank(cells):
                    records.append(cells)
                if len(records) >= _SNIFF_RECORDS:
                    break
        except csv.Error:
            pass
        # A delimiter that does not split the header is not this file's delimiter; this is what
        # tells "Name;Amount" / "Anna;12,50" apart from a comma file.
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        rest = records[1:]
        # Rows as wide as the header agree with it; so do rows with trailing empty cells only.
        agreeing = sum(
            1 for r in rest if len(r) == width or (len(r) > width and _is_blank(r[width:]))
        )
        score = (agreeing / len(rest) if rest else 1.0, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _records(
    lines: list[str], start: int, delimiter: str, problems: list[RowProblem]
) -> Iterator[tuple[int, list[str]]]:
    # Yields (first line of the record, cells). A csv.Error or an unclosed quote becomes a problem
    # and reading resumes on the next line with a fresh reader, so one bad row costs one row.
    recoveries = 0
    while start < len(lines):
        feed = _LineFeed(lines, start)
        reader = _reader(feed, delimiter)
        while True:
            before = reader.line_num
            line = start + before + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.append(RowProblem(line, f"Could not read this row ({exc}); skipped."))
                start = max(start + reader.line_num, line)
                break
            if feed.exhausted:
                # The reader hit the end of the file inside a quoted cell: its opening quote was
                # never closed, and the rest of the file was swallowed into this one cell.
                problems.append(
                    RowProblem(line, 'A quoted cell (") on this row is never closed; row skipped.')
                )
                recoveries += 1
                if recoveries > _MAX_QUOTE_RECOVERIES:
                    problems.append(RowProblem(line, "Too many unclosed quotes; stopped reading."))
                    return
                start = line  # the index of the line after the row's first line
                break
            yield line, cells


def _unique_names(cells: list[str]) -> list[str]:
    names = [cell or f"column {i}" for i, cell in enumerate(cells, 1)]
    # Reserve every name as written first, so a generated "Email (2)" never takes the name of
    # a later column the user really called "Email (2)". Compared case-insensitively because
    # "Email" and "email" side by side would be just as confusing in the mapping screen.
    reserved = {name.casefold() for name in names}
    taken: set[str] = set()
    unique: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate.casefold() in taken or (n > 1 and candidate.casefold() in reserved):
            n += 1
            candidate = f"{name} ({n})"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique


def read_rows(
    text: str, *, max_field_chars: int = MAX_FIELD_CHARS, max_rows: int | None = None
) -> ParsedCsv:
    """Parse CSV text into a header and rows as wide as it, listing problems; never raises."""
    problems: list[RowProblem] = []
    if len(text) > MAX_IMPORT_BYTES:
        message = f"The file is larger than {_MB} MB; split it into smaller files."
        return ParsedCsv(header=[], rows=[], problems=[RowProblem(1, message)])
    # The csv module would take a lone "\r" in an unquoted cell for an error; one newline only.
    lines = _normalise_newlines(text.removeprefix("\ufeff")).split("\n")
    if lines[-1] == "":
        lines.pop()  # the text's final newline ends the last line; it does not start another

    start = 0
    sep = _SEP_LINE.fullmatch(lines[0]) if lines else None
    if sep is not None and sep.group(1) in DELIMITERS:
        delimiter, start = sep.group(1), 1
    else:
        delimiter = _sniff_delimiter(lines, 0)

    row_limit = MAX_ROWS if max_rows is None else max(0, max_rows)
    header: list[str] | None = None
    header_width = 0
    rows: list[CsvRow] = []
    for line, raw_cells in _records(lines, start, delimiter, problems):
        if header is None and problems:
            break  # the header row itself was unreadable: guessing another would mislead
        cells = [cell.strip() for cell in raw_cells]
        if not any(cells):
            continue
        longest = max(len(cell) for cell in cells)
        if header is None:
            if longest > max_field_chars:
                problems.append(
                    RowProblem(
                        line,
                        f"The header row has a cell of {longest:,} characters "
                        f"(the limit is {max_field_chars:,}); is this a CSV file?",
                    )
                )
                return ParsedCsv(header=[], rows=[], problems=problems, delimiter=delimiter)
            header_width = len(cells)
            if header_width > MAX_COLUMNS:
                problems.append(
                    RowProblem(
                        line,
                        f"The file has {header_width:,} columns; only the first {MAX_COLUMNS} "
                        "are read.",
                    )
                )
            header = _unique_names(cells[:MAX_COLUMNS])
            continue
        if len(rows) >= row_limit:
            problems.append(
                RowProblem(
                    line, f"The file has more than {row_limit:,} rows; the rest was not read."
                )
            )
            break
        if longest > max_field_chars:
            problems.append(
                RowProblem(
                    line,
                    f"A cell has {longest:,} characters, more than the limit of "
                    f"{max_field_chars:,}; row skipped.",
                )
            )
            continue
        # Trailing empty cells beyond the header are common (Excel pads rows to the widest one)
        # and carry nothing, so they are dropped without a problem.
        if len(cells) > header_width and any(cells[header_width:]):
            problems.append(
                RowProblem(
                    line,
                    f"Row has {len(cells)} cells, the header has {header_width}; "
                    "extra cells ignored.",
                )
            )
        width = len(header)
        values = cells[:width] + [""] * (width - len(cells))
        rows.append(CsvRow(line=line, values=values))

    if header is None:
        if problems:
            problems.append(RowProblem(problems[0].line, "Could not read the header row."))
        else:
            problems.append(RowProblem(1, "The file is empty: it has no header row."))
        return ParsedCsv(header=[], rows=[], problems=problems, delimiter=delimiter)
    return ParsedCsv(header=header, rows=rows, problems=problems, delimiter=delimiter)


# --------------------------------------------------------------------------------------------
# Guessing the column mapping
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChoice:
    """A field a column may be mapped to: its key, its label and its field type name."""

    key: str
    label: str
    type: str


# Phrases are written naturally (accents, spaces, punctuation) and normalised at import.
# Numbered vendor columns ("E-mail 2 Address", "Phone 1 - Value") match with their digits removed.
# Strong synonyms name the field unambiguously; weak ones only win when nothing stronger does
# (Outlook's "Title" is "Mr."/"Dr." next to its "Job Title"; HubSpot's "Lead Status" is not its
# "Lifecycle Stage" but is the closest thing when that column is absent).
_STRONG_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "first name", "first", "given name", "forename", "christian name",
        "contact first name", "vorname", "rufname", "prénom", "premier prénom", "nombre",
        "nombre de pila", "primer nombre", "primeiro nome", "nome próprio", "nome", "voornaam",
        "roepnaam",
    ),
    "last_name": (
        "last name", "last", "surname", "family name", "contact last name", "nachname",
        "familienname", "zuname", "nom", "nom de famille", "apellido", "apellidos",
        "apellido(s)", "primer apellido", "sobrenome", "apelido", "último nome", "cognome",
        "achternaam", "familienaam",
    ),
    FULL_NAME_KEY: (
        "full name", "complete name", "contact full name", "nom complet", "vollständiger name",
        "voller name", "nombre completo", "nombre y apellidos", "nome completo",
        "nome e cognome", "volledige naam",
    ),
    "emails": (
        "email", "emails", "email address", "email addresses", "e-mail 1 - value",
        "email value", "mail", "work email", "business email", "personal email",
        "private email", "home email", "other email", "primary email", "main email",
        "contact email", "e-mail-adresse", "e-mail adresse", "mailadresse", "e-mail 2: adresse",
        "e-mail privat", "e-mail geschäftlich", "courriel", "adresse e-mail", "adresse email",
        "adresse mail", "adresse électronique", "adresse de messagerie", "mél",
        "correo", "correo electrónico", "dirección de correo electrónico",
        "dirección de correo", "correio eletrônico", "correio electrónico",
        "endereço de e-mail", "endereço de email", "endereço eletrônico", "indirizzo email",
        "indirizzo e-mail", "posta elettronica", "indirizzo di posta elettronica",
        "e-mailadres",
    ),
    "phones": (
        "phone", "phones", "phone number", "phone numbers", "phone 1 - value", "telephone",
        "telephone number", "tel", "mobile", "mobile phone", "mobile phone number",
        "mobile number", "cell", "cell phone", "cellphone", "business phone", "work phone",
        "home phone", "other phone", "primary phone", "main phone", "company main phone",
        "direct phone", "direct dial", "telefon", "telefonnummer", "telefon geschäftlich",
        "telefon privat", "mobiltelefon", "mobil", "handy", "handynummer", "mobilnummer",
        "téléphone", "numéro de téléphone", "téléphone mobile", "tél. mobile", "portable",
        "téléphone portable", "téléphone (bureau)", "téléphone professionnel",
        "téléphone (domicile)", "teléfono", "número de teléfono", "teléfono móvil", "móvil",
        "celular", "teléfono del trabajo", "teléfono particular", "telefone",
        "número de telefone", "telefone celular", "telemóvel", "telefone comercial",
        "telefone residencial", "telefono", "numero di telefono", "cellulare",
        "telefono cellulare", "telefono ufficio", "telefoon", "telefoonnummer", "mobiel",
        "mobiele telefoon", "mobiel nummer",
    ),
    "job_title": (
        "job title", "job", "job position", "position", "position title", "organization title",
        "organization 1 - title", "occupation", "jobtitel", "berufsbezeichnung", "funktion",
        "stellung", "beruf", "fonction", "poste", "intitulé du poste", "titre du poste",
        "cargo", "puesto", "título del puesto", "função", "profissão", "ruolo", "qualifica",
        "mansione", "posizione", "titolo professionale", "functie", "functietitel", "beroep",
    ),
    "company": (
        "company", "company name", "organization", "organisation", "organization name",
        "organisation name", "organization 1 - name", "account", "account name", "employer",
        "business", "business name", "associated company", "firm", "firma", "firmenname",
        "unternehmen", "unternehmensname", "arbeitgeber", "société", "entreprise",
        "nom de l'entreprise", "nom de la société", "organisme", "employeur", "empresa",
        "compañía", "nombre de la empresa", "organización", "companhia", "nome da empresa",
        "organização", "azienda", "società", "ditta", "nome azienda", "ragione sociale",
        "organizzazione", "bedrijf", "bedrijfsnaam", "organisatie", "werkgever",
    ),
    "name": (
        "deal name", "deal", "deal title", "opportunity name", "opportunity",
        "nom de la transaction", "nom de l'affaire", "affaire", "opportunité",
        "nombre del negocio", "nombre de la oportunidad", "oportunidad", "negocio",
        "nome do negócio", "negócio", "oportunidade", "nome dell'opportunità", "opportunità",
        "trattativa", "dealnaam", "verkaufschance", "geschäft",
    ),
    "domain": (
        "domain", "domain name", "company domain name", "company domain", "website",
        "website url", "web site", "web page", "webpage", "website 1 - value", "url",
        "homepage", "home page", "web", "webseite", "internetseite", "internetadresse",
        "domäne", "site web", "site internet", "domaine", "nom de domaine", "sitio web",
        "página web", "dominio", "site", "domínio", "sito web", "sito", "domein",
    ),
    "industry": (
        "industry", "sector", "industry sector", "vertical", "branche", "industrie",
        "wirtschaftszweig", "secteur", "secteur d'activité", "industria", "setor", "ramo",
        "settore",
    ),
    "size": (
        "size", "company size", "employees", "number of employees", "no. of employees",
        "# of employees", "employee count", "headcount", "mitarbeiter", "anzahl mitarbeiter",
        "mitarbeiterzahl", "unternehmensgröße", "größe", "taille", "taille de l'entreprise",
        "effectif", "effectifs", "nombre d'employés", "nombre de salariés", "tamaño",
        "tamaño de la empresa", "empleados", "número de empleados", "tamanho",
        "tamanho da empresa", "funcionários", "número de funcionários", "dimensione",
        "dimensione aziendale", "dipendenti", "numero di dipendenti", "grootte",
        "bedrijfsgrootte", "medewerkers", "aantal medewerkers", "werknemers",
    ),
    "stage": (
        "stage", "deal stage", "pipeline stage", "opportunity stage", "sales stage",
        "deal phase", "phase", "stufe", "verkaufsphase", "étape", "étape de la vente",
        "étape de la transaction", "etapa", "etapa de venta", "etapa del negocio", "fase",
        "etapa do negócio", "fase della trattativa", "fase di vendita", "stadium", "dealfase",
    ),
    "amount": (
        "amount", "deal amount", "deal value", "value", "opportunity amount", "betrag", "wert",
        "auftragswert", "montant", "valeur", "importe", "monto", "valor", "montante",
        "importo", "valore", "bedrag", "waarde",
    ),
    "close_date": (
        "close date", "closing date", "expected close date", "expected closing date",
        "closed date", "abschlussdatum", "erwartetes abschlussdatum",
        "voraussichtliches abschlussdatum", "date de clôture", "date de clôture prévue",
        "date de conclusion", "fecha de cierre", "fecha de cierre prevista",
        "fecha de cierre esperada", "data de fechamento", "data de encerramento",
        "data prevista de fechamento", "data di chiusura", "data di chiusura prevista",
        "sluitingsdatum", "verwachte sluitingsdatum", "afsluitdatum",
    ),
    "priority": (
        "priority", "prio", "priorität", "priorité", "prioridad", "prioridade", "priorità",
        "prioriteit",
    ),
    "owner": (
        "owner", "contact owner", "company owner", "deal owner", "record owner",
        "account owner", "opportunity owner", "lead owner", "hubspot owner", "assigned to",
        "assignee", "sales rep", "salesperson", "sales owner", "besitzer", "inhaber",
        "verantwortlich", "verantwortlicher", "zuständig", "eigentümer", "betreuer",
        "kundenbetreuer", "propriétaire", "responsable", "commercial", "propietario",
        "asignado a", "vendedor", "responsável", "proprietário", "dono", "proprietario",
        "responsabile", "assegnato a", "eigenaar", "verantwoordelijke", "accountmanager",
        "toegewezen aan",
    ),
    "lifecycle_stage": (
        "lifecycle stage", "lifecycle", "lifecycle phase", "contact stage",
        "lebenszyklusphase", "lebenszyklus", "phase du cycle de vie", "cycle de vie",
        "étape du cycle de vie", "etapa del ciclo de vida", "ciclo de vida",
        "estágio do ciclo de vida", "fase do ciclo de vida", "fase del ciclo di vita",
        "ciclo di vita", "levenscyclusfase", "levenscyclus",
    ),
    "lead_source": (
        "lead source", "source", "original source", "contact source", "lead origin", "origin",
        "leadquelle", "quelle", "herkunft", "kontaktquelle", "source du lead",
        "source du contact", "origine", "origen", "origen del lead", "fuente",
        "fuente del lead", "origem", "origem do lead", "fonte", "fonte del lead",
        "origine del lead", "bron", "leadbron", "herkomst",
    ),
}  # fmt: skip

_WEAK_SYNONYMS: dict[str, tuple[str, ...]] = {
    FULL_NAME_KEY: (
        "name", "display name", "contact name", "contact", "contact person", "naam",
        "anzeigename", "ansprechpartner", "nom d'affichage", "contacto", "contato",
        "contatto", "contactpersoon",
    ),
    "job_title": ("title", "titel", "titre", "título", "titolo", "role", "rolle", "rôle", "rol"),
    "name": (
        "title", "company", "company name", "account", "account name", "organization",
        "organisation", "organization name", "nom", "nombre", "nome", "naam", "firma",
        "unternehmen", "société", "entreprise", "empresa", "azienda", "bedrijf",
    ),
    "stage": ("status", "statut", "estado", "stato"),
    "lifecycle_stage": (
        "lead status", "lead stage", "contact status", "status", "statut", "statut du lead",
        "estado", "estado del lead", "status do lead", "stato", "stato del lead",
    ),
    "amount": ("revenue", "total", "umsatz", "chiffre d'affaires"),
    "contacts": (
        "contact", "contacts", "associated contact", "associated contacts", "kontakt",
        "kontakte", "ansprechpartner", "contacto", "contactos", "contato", "contatos",
        "contatto", "contatti", "contactpersoon",
    ),
}  # fmt: skip

_EXACT, _STRONG, _WEAK = 3, 2, 1
# Field types where one record holds several values, so several columns may feed one field.
_MULTI_VALUED_TYPES = frozenset({"email", "phone"})
# When a folder has no field with the canonical key, the first field of this type takes its
# synonyms (a custom folder's "Work email" field still gets "E-mail Address" columns).
_TYPE_FALLBACKS = {"emails": "email", "phones": "phone"}
_NAME_PARTS = ("first_name", "last_name")


def _normalise_name(text: str) -> str:
    # Case-, accent- and punctuation-insensitive: "E-Mail-Adresse", "e-mail adresse" and
    # "EMAILADRESSE" are one name. casefold() also turns "ß" into "ss"; NFKD splits "é" into
    # "e" plus a combining accent, which isalnum() then drops.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def _strip_digits(name: str) -> str:
    return "".join(ch for ch in name if not ch.isdigit())


def _build_phrase_index() -> dict[str, dict[str, int]]:
    index: dict[str, dict[str, int]] = {}
    for table, score in ((_STRONG_SYNONYMS, _STRONG), (_WEAK_SYNONYMS, _WEAK)):
        for key, phrases in table.items():
            for phrase in phrases:
                for form in {_normalise_name(phrase), _strip_digits(_normalise_name(phrase))}:
                    scores = index.setdefault(form, {})
                    scores[key] = max(scores.get(key, 0), score)
    return index


_PHRASES = _build_phrase_index()


def _synonym_targets(fields: Sequence[FieldChoice]) -> dict[str, str]:
    # canonical synonym key -> the key of the folder's field that takes those synonyms
    targets: dict[str, str] = {}
    known = set(_STRONG_SYNONYMS) | set(_WEAK_SYNONYMS)
    for f in fields:
        if f.key in known:
            targets.setdefault(f.key, f.key)
    # A field whose own label or key is a strong synonym of a canonical key ("E-mail" keyed
    # "email") takes that key's synonyms when the folder has no field keyed canonically.
    for f in fields:
        if f.key in targets.values():
            continue
        for form in (_normalise_name(f.label), _normalise_name(f.key)):
            for key, score in _PHRASES.get(form, {}).items():
                if score == _STRONG and key != FULL_NAME_KEY and key not in targets:
                    targets[key] = f.key
    for key, type_name in _TYPE_FALLBACKS.items():
        if key not in targets:
            typed = [f.key for f in fields if f.type == type_name]
            if typed:
                targets[key] = typed[0]
    if any(f.key in _NAME_PARTS for f in fields):
        targets[FULL_NAME_KEY] = FULL_NAME_KEY
    return targets


def guess_mapping(header: Sequence[str], fields: Sequence[FieldChoice]) -> dict[int, str]:
    """Guess which field each column feeds, from its name in several languages and vendors."""
    targets = _synonym_targets(fields)
    multi = {f.key for f in fields if f.type in _MULTI_VALUED_TYPES}
    by_name: dict[str, str] = {}
    for f in fields:
        by_name.setdefault(_normalise_name(f.label), f.key)
        by_name.setdefault(_normalise_name(f.key), f.key)

    candidates: dict[tuple[int, str], int] = {}
    for column, name in enumerate(header):
        normal = _normalise_name(name)
        if not normal:
            continue
        for form in dict.fromkeys((normal, _strip_digits(normal))):
            if form in by_name:
                candidates[(column, by_name[form])] = _EXACT
            for key, score in _PHRASES.get(form, {}).items():
                if key in targets:
                    target = targets[key]
                    candidates[(column, target)] = max(candidates.get((column, target), 0), score)

    # Best matches first, leftmost column first among equals; each column feeds one field and
    # each single-valued field takes one column.
    mapping: dict[int, str] = {}
    used: set[str] = set()
    for (column, key), _score in sorted(candidates.items(), key=lambda c: (-c[1], c[0][0])):
        if column in mapping or (key in used and key not in multi):
            continue
        mapping[column] = key
        used.add(key)

    # A full-name column only stands in for missing first/last name columns.
    if any(targets.get(part) in used for part in _NAME_PARTS):
        mapping = {c: k for c, k in mapping.items() if k != FULL_NAME_KEY}
    return dict(sorted(mapping.items()))


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

# Spreadsheet apps run a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_TRIGGERS = frozenset("=+-@")
# Exceptions, left unescaped: an international phone number and a plain negative number. Made
# only of digits, spaces and ()-./ (no letters, no "!" or "|"), such a cell cannot name a
# function, a cell reference or a DDE link, so it cannot run or fetch anything; at worst Excel
# shows "+49-30" as arithmetic. Escaping them would instead put a stray "'" in front of every
# international phone number and negative amount in every export.
_PHONE_NUMBER = re.compile(r"\+[0-9 ().\-/]*[0-9][0-9 ().\-/]*")
_NEGATIVE_NUMBER = re.compile(r"-(?:[0-9]+(?:[.,][0-9]+)*|[.,][0-9]+)")
_EXPORT_CHUNK_CHARS = 64 * 1024


def escape_cell(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula by prefixing a single quote."""
    if value[:1] in ("\t", "\r"):
        return "'" + value
    # Look past leading whitespace and NULs: some importers trim them (ours does), which would
    # bring a hidden "=" to the front.
    probe = value.replace("\x00", "").strip()
    if probe[:1] in _FORMULA_TRIGGERS and not (
        _PHONE_NUMBER.fullmatch(probe) or _NEGATIVE_NUMBER.fullmatch(probe)
    ):
        return "'" + value
    return value


def write_csv(header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> Iterator[str]:
    """Stream an export as text chunks: UTF-8 BOM first, CRLF line ends, formula cells escaped."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([escape_cell(cell) for cell in header])
    # The BOM makes Excel read the file as UTF-8 rather than the machine's ANSI code page. The
    # chunks are text: encode them as UTF-8 (Flask does so for a generator of str).
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for row in rows:
        writer.writerow([escape_cell("" if cell is None else cell) for cell in row])
        if buffer.tell() >= _EXPORT_CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    rest = buffer.getvalue()
    if rest:
        yield rest
