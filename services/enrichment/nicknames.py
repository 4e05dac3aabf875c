"""Given names that agencies record for the same child: the formal name and its usual short forms.

A school may know "Ollie" where the hospital has "Oliver". The groups are common English short
forms; a partnership can extend them. Names are compared upper case, letters only.
"""

from __future__ import annotations

_GROUPS = (
    "ALEXANDER ALEX ALFIE", "ALFRED ALF ALFIE", "ARCHIBALD ARCHIE", "BENJAMIN BEN BENJI BENNY",
    "CHARLES CHARLIE CHAS", "CHRISTOPHER CHRIS KIT", "DANIEL DAN DANNY", "EDWARD ED EDDIE TED TEDDY",
    "FREDERICK FRED FREDDIE FREDDY", "HENRY HARRY HAL", "JACOB JAKE", "JAMES JIM JIMMY JAMIE",
    "JONATHAN JON JONNY", "JOSEPH JOE JOEY", "JOSHUA JOSH", "MATTHEW MATT", "MICHAEL MIKE MICKY",
    "NATHANIEL NATHAN NAT", "NICHOLAS NICK NICKY", "OLIVER OLLIE OLLY", "REGINALD REGGIE",
    "RICHARD RICH RICKY DICK", "ROBERT ROB ROBBIE BOB BOBBY", "SAMUEL SAM SAMMY", "SEBASTIAN SEB",
    "THEODORE THEO TEDDY", "THOMAS TOM TOMMY", "WILLIAM WILL WILLIE BILLY LIAM", "ZACHARY ZAC ZACK",
    "ABIGAIL ABBIE ABBY", "ALEXANDRA ALEX LEXI", "CATHERINE KATE KATIE CATH", "CHARLOTTE LOTTIE CHARLIE",
    "CHRISTINA CHRISSIE TINA", "ELEANOR ELLIE NELL", "ELIZABETH BETH LIZZIE LIZ ELIZA BETTY",
    "EMILY EM EMMY", "EMMA EM", "FLORENCE FLO FLOSSIE", "GEORGINA GEORGIE", "ISABEL IZZY BELLA",
    "ISABELLA BELLA IZZY", "ISABELLE IZZY BELLE", "JESSICA JESS JESSIE", "JENNIFER JEN JENNY",
    "KATHERINE KATE KATIE KAT", "MARGARET MAGGIE PEGGY MEG", "MATILDA TILLY TILDA", "OLIVIA LIV LIVVY",
    "REBECCA BECKY BECCA", "SAMANTHA SAM SAMMY", "SOPHIA SOPHIE", "SUSANNAH SUSIE SUE", "VICTORIA VICKY TORI",
)
_ALIASES: dict[str, set[str]] = {}
for _group in _GROUPS:
    _names = _group.split()
    for _name in _names:
        _ALIASES.setdefault(_name, set()).update(_names)


def same_given_name(a: str, b: str) -> bool:
    """True when one is a usual short form of the other (or both are of the same formal name)."""
    return b in _ALIASES.get(a, ())
