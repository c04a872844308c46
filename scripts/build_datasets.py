"""Rebuild the shipped datasets (stamps200, clipart200) from installed Debian packages.

    apt-get install -y tuxpaint-stamps-default openclipart-png
    python scripts/build_datasets.py [--sheets DIR]

Each class lists source globs; candidates are shuffled with a fixed per-class seed and the first
20 usable ones are taken, so excluding an image replaces just that image. An image is unusable
when it is on the exclude list (picked out by eye from the contact sheets), a black-and-white
or mirrored variant of another file, a byte-identical copy of an image already taken, too large
to decode safely, or too small to be recognisable. `fallback` globs (drawings) are only reached
when a class runs out of photos. The dataset folder is cleared and rewritten every run.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from convenet.data.datasets import (  # noqa: E402
    DATASETS,
    fit_thumbnail,
    flatten,
    open_image,
    safe_name,
    save_thumbnail,
    seeded_order,
)
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402

SEED = 0
N_PER_CLASS = 20
MAX_PIXELS = 40_000_000  # a few clip-art PNGs are 16000 px posters; decoding one needs ~1 GB
MIN_SIDE = 48  # longest visible side; many stamps are 50 px (Tiny ImageNet is 64 px)
VARIANT_TOKENS = {"bw", "mirror"}  # "<name>_bw.png" / "<name>_mirror.png" repeat <name>.png
SHEET_THUMB = 96


@dataclass(frozen=True)
class ClassSource:
    name: str
    globs: tuple[str, ...]
    fallback: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetBuild:
    dataset: str
    package: str
    base: Path
    licence_text: Path  # copied verbatim to LICENSE.txt
    notice: str  # NOTICE.txt; {version} is filled in
    classes: tuple[ClassSource, ...]
    exclude: frozenset[str]  # paths relative to base


STAMPS = DatasetBuild(
    dataset="stamps200",
    package="tuxpaint-stamps-default",
    base=Path("/usr/share/tuxpaint/stamps"),
    licence_text=Path("/usr/share/common-licenses/GPL-2"),
    notice="""\
stamps200: 200 images (10 classes x 20) derived from Tux Paint's stamp collection.

Source: Debian package tuxpaint-stamps-default, version {version}
        (upstream: Tux Paint stamps, https://tuxpaint.org/)
Copyright: 2002-2022 Bill Kendrick <bill@newbreedsoftware.com> and the Tux Paint contributors
License: GPL-2+ (GNU General Public License, version 2 or any later version).
         The full GPL-2 text is in LICENSE.txt (as Debian ships it at
         /usr/share/common-licenses/GPL-2).

This dataset is free software; you can redistribute it and/or modify it under the terms of the
GNU General Public License as published by the Free Software Foundation; either version 2 of the
License, or (at your option) any later version. It is distributed in the hope that it will be
useful, but WITHOUT ANY WARRANTY; without even the implied warranty of MERCHANTABILITY or
FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License for more details.

Changes: the original PNG stamps (the preferred form for modification, in the Debian source
package tuxpaint-stamps {version}) were selected, cropped to their visible pixels, flattened onto
white, scaled into 192x192 squares and saved as JPEG by scripts/build_datasets.py.
SOURCES.txt maps every image to the file it was made from.
""",
    classes=(
        ClassSource("birds", ("animals/birds/*.png",)),
        ClassSource(
            "hoofed_mammals",
            (
                "animals/mammals/bovines/*.png",
                "animals/mammals/camel/*.png",
                "animals/mammals/deer/*.png",
                "animals/mammals/equines/*.png",
                "animals/mammals/giraffe.png",
                "animals/mammals/hippopotamus.png",
                "animals/mammals/pig*.png",
                "animals/mammals/rhino_black.png",
                "animals/mammals/wildboar.png",
            ),
        ),
        ClassSource(
            "other_mammals",
            (
                "animals/mammals/apes/*.png",
                "animals/mammals/bears/*.png",
                "animals/mammals/cats/*.png",
                "animals/mammals/dogs/*.png",
                "animals/mammals/rodents/*.png",
                "animals/marsupials/*.png",
                "animals/mammals/badger.png",
                "animals/mammals/elephant.png",
                "animals/mammals/ferret.png",
                "animals/mammals/rabbit_little.png",
            ),
        ),
        ClassSource(
            "water_animals",
            (
                "animals/fish/*.png",
                "animals/shellfish/*.png",
                "animals/mammals/aquatic/*.png",
                "animals/amphibians/*.png",
            ),
        ),
        ClassSource("fruit", ("food/fruit/*.png",)),
        ClassSource(
            "vegetables", ("food/vegetables/*.png", "food/spices/*.png", "plants/mushrooms/*.png")
        ),
        ClassSource("flowers", ("plants/flowers/*.png",)),
        ClassSource(
            "vehicles",
            (
                "vehicles/*.png",
                "vehicles/*/*.png",
                "vehicles/flight/planes/*.png",
                "military/vehicles/*.png",
            ),
            fallback=(  # drawings, used only when the photos run out
                "vehicles/construction/cartoon/terex.png",
                "vehicles/emergency/cartoon/fire_engine.png",
                "vehicles/masstransit/cartoon/double_decker_bus.png",
                "vehicles/locomotive/cartoon/toy_train.png",
            ),
        ),
        ClassSource("coins", ("symbols/money/*/coins/*.png", "symbols/money/japanese/*.png")),
        ClassSource(
            "household_objects",
            (
                "household/*.png",
                "household/arttools/*.png",
                "household/dishes/*.png",
                "household/dishes/utensils/*.png",
                "household/tools/*.png",
            ),
        ),
    ),
    exclude=frozenset(
        {
            "vehicles/7spoke256.png",  # a wheel, not a vehicle
            "vehicles/wheel_tractor.png",  # a wheel, not a vehicle
            "plants/mushrooms/cep.png",  # near-duplicate of cep-1.png
            "vehicles/emergency/sedan_police.png",  # garbled: a thin strip
            "animals/birds/albino_peahen.png",  # a white bird lost in grass
        }
    ),
)

CLIPART = DatasetBuild(
    dataset="clipart200",
    package="openclipart-png",
    base=Path("/usr/share/openclipart/png"),
    licence_text=Path("/usr/share/doc/openclipart-png/copyright"),
    notice="""\
clipart200: 200 images (10 classes x 20) derived from the Open Clip Art Library.

Source: Debian package openclipart-png, version {version}
        (upstream: Open Clip Art Library, https://openclipart.org/)
License: public domain. The artists dedicated these works to the public domain; the dedication,
         as Debian ships it in /usr/share/doc/openclipart-png/copyright, is in LICENSE.txt.
         Attribution is not required; SOURCES.txt names each original file (file names carry
         the artist's name).

Changes: the original PNGs were selected, cropped to their visible pixels, flattened onto white,
scaled into 192x192 squares and saved as JPEG by scripts/build_datasets.py.
""",
    classes=(
        ClassSource("birds", ("animals/birds/*.png", "animals/birds/penguin/*.png")),
        ClassSource("insects", ("animals/bugs/*.png",)),
        ClassSource("cats", ("animals/mammals/big_cats/*.png", "animals/mammals/housecats/*.png")),
        ClassSource("fruit", ("food/fruit/*.png",)),
        ClassSource("desserts", ("food/desserts/*.png",)),
        ClassSource("drinks", ("food/beverages/*.png", "food/beverages/alcohol/*.png")),
        ClassSource("flowers", ("plants/flowers/*.png",)),
        ClassSource(
            "musical_instruments",
            tuple(
                f"recreation/music/*{word}*.png"
                for word in (
                    "drum",
                    "guitar",
                    "cello",
                    "derbouk",
                    "djamb",
                    "flute",
                    "horn",
                    "harp",
                    "maracas",
                    "dulcimer",
                    "oboe",
                    "piano_geraint",
                    "saxophone",
                    "trombone",
                    "trumpet",
                    "violin",
                    "xylophone",
                )
            ),
        ),
        ClassSource(
            "road_vehicles",
            tuple(
                f"transportation/{where}*{word}*.png"
                for where in ("", "vehicles/", "vehicles/hummers/")
                for word in ("car", "truck", "bus", "blazer", "4wd", "autos", "tram")
            )
            + tuple(
                f"transportation/{name}.png"
                for name in (
                    "ambulans_romus_01",
                    "beach_trip_ganson",
                    "fire_engine_romus_01",
                    "motorcycle_jarno_vasama_",
                    "toyota_land_cruiser_ganson",
                    "bmw_z_from_top_aubanel_",
                    "dodge_neon_green_ganson",
                    "hummer_01",  # two of the many near-identical Hummers
                    "hummer_05",
                )
            ),
        ),
        ClassSource(
            "hand_tools",
            tuple(
                f"tools/*{word}*.png"
                for word in (
                    "axe",
                    "hammer",
                    "mallot",
                    "saw",
                    "sega",
                    "screwdriver",
                    "wrench",
                    "chiave_arch",
                    "utensili",
                    "shovel",
                    "trowel",
                    "rake",
                    "drill",
                    "lopper",
                    "hedgeshear",
                    "cultivator",
                    "livella",
                    "nail_puller",
                    "paint_brush",
                    "paint_roller_gerald",
                    "spaclu",
                    "tools_nicu",
                )
            ),
        ),
    ),
    exclude=frozenset(
        {
            # birds: Tux mascots, a bat, a cooked turkey, missing-image placeholders, a flock
            "animals/birds/baby-tux_alex_kuehne_01.png",
            "animals/birds/baby_tux_01.png",
            "animals/birds/baby_tux_rory_mccann_01.png",
            "animals/birds/ninja_tux_rory_mccann_01.png",
            "animals/birds/new_penguin_charles_mcco_01.png",
            "animals/birds/penguin/plush_tux_anita_01.png",
            "animals/birds/penguin/tux_clemente_01.png",
            "animals/birds/penguin/tux_didier_fabert_01.png",
            "animals/birds/manager_mimooh_01.png",
            "animals/birds/mirjam_meijer_mirjam_mei_01.png",
            "animals/birds/contour_bat.png",
            "animals/birds/turkey_on_platter_01.png",
            "animals/birds/duck_yellow_ii_kurt_cagl_.png",
            "animals/birds/wing_mitchell_johnson_si_.png",
            "animals/birds/stormo_di_uccelli_archit_01.png",
            "animals/birds/acquila_architetto_franc_04.png",  # a cropped fragment
            "animals/birds/cigno_di_notte_nella_pa_01.png",  # a night scene, bird barely visible
            "animals/birds/aquila_frontale_architet_01.png",  # near-duplicate of acquila_..._03
            # insects: spiders, snails, a virus, a fairy, a group picture
            "animals/bugs/spider.png",
            "animals/bugs/ragnetto_incazzato_archi_01.png",
            "animals/bugs/ragno_figo_architetto_fr_01.png",
            "animals/bugs/lumaca_architetto_france_01.png",
            "animals/bugs/lumaca_turbo_architetto__01.png",
            "animals/bugs/virus_andreas_nilsson_01.png",
            "animals/bugs/zanzara_cretina_architet_01.png",
            "animals/bugs/quattro_farfalle_archite_01.png",
            "animals/bugs/blue_dragonfly_ghuul_ghu_01.png",
            "animals/bugs/flying_wasp_gerald_g._02.png",  # near-duplicate of _01
            # cats: a scratching post without a cat, a cartoon face, a near-duplicate outline
            "animals/mammals/housecats/cat_scrathing_post_benji_01.png",
            "animals/mammals/housecats/cartoon_vgcats_fanart_01.png",
            "animals/mammals/housecats/sleeping_cat_rgolan_sup_r.png",
            # fruit: packaging, pies, drinks, nuts, a mushroom, scenes, icons
            "food/fruit/apple_juice_box.png",
            "food/fruit/candied_apples_ganson.png",
            "food/fruit/champignon_01.png",
            "food/fruit/eris_apple_nurbldoff_01.png",
            "food/fruit/fruitcollection_leif_lod_07.png",
            "food/fruit/gumnut_black_01.png",
            "food/fruit/gumnut_shaded_01.png",
            "food/fruit/juice_glass_andremarcel._01.png",
            "food/fruit/kallisti-grenade_1_nurbl_01.png",
            "food/fruit/pie_apple.png",
            "food/fruit/pie_cherry.png",
            "food/fruit/slate-apple_benji_park_01.png",
            "food/fruit/straw_tote_linda_kim_01.png",
            "food/fruit/tile_orange_gabriel_lo_i_01.png",
            "food/fruit/tree_whit_fruits_01.png",
            "food/fruit/turkey_platter_01_with_fruit_and_vegitables_01.png",
            "food/fruit/lemon_half_slice_ganson.png",  # near-duplicates of the lemon/lime halves
            "food/fruit/lime_half_slice_ganson.png",
            "food/fruit/lime_slice_ganson.png",
            "food/fruit/applf.png",  # near-duplicate of an_apple_01.png
            # drinks: flower pots, ice cubes, a coffee machine, a barrel, a toast scene
            "food/beverages/flower-pot_01.png",
            "food/beverages/flower-pot_02.png",
            "food/beverages/ice_cube_jarno_vasamaa_.png",
            "food/beverages/icecube_benji_park_.png",
            "food/beverages/macchina_caffe_architett_01.png",
            "food/beverages/alcohol/wooden_barrel_petri_lumm_01.png",
            "food/beverages/alcohol/noi_due_insieme_brindis_01.png",
            "food/beverages/alcohol/wine_corks_ganson.png",
            # flowers: a cactus, a tree, a butterfly collage, near-duplicate magnolia
            "plants/flowers/cactus_linda_kim_01.png",
            "plants/flowers/cartoon_tree_01.png",
            "plants/flowers/mirjam_meijer_mirjam_mei_01.png",
            "plants/flowers/magnolia_white_patricia__01.png",
            # musical instruments: trumpet mutes, an unrecognisable ornament
            "recreation/music/trumpet_harmon_mute__ganson.png",
            "recreation/music/trumpet_straight_mute_ganson.png",
            "recreation/music/war_drum_enrique_meza_c_02.png",
            # road vehicles: road signs and pictograms
            "transportation/car_jamin_ellis_.png",
            "transportation/bus_opposite.png",
            "transportation/bus_lane.png",
            "transportation/buses_and_bikes.png",
            "transportation/trams_only.png",
            "transportation/tram.png",
            "transportation/bus_01.png",
            # hand tools: a key, a faint outline, an unclear socket wrench
            "tools/chiave_architetto_france_01.png",
            "tools/paint_brush_linda_kim_01.png",
            "tools/wrench_jarno_vasamaa_01.png",
        }
    ),
)

BUILDS = {plan.dataset: plan for plan in (STAMPS, CLIPART)}


def package_version(package: str) -> str:
    """Installed Debian version, so the notice names exactly what the images came from."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"Debian package {package} is not installed: apt-get install -y {package}")
    return out.stdout.strip()


def is_variant(path: Path) -> bool:
    return bool(VARIANT_TOKENS & set(path.stem.lower().split("_")))


def candidates(base: Path, globs: tuple[str, ...], seed: str) -> list[Path]:
    """Every file the globs match, deduplicated, in a fixed shuffled order."""
    paths = {p.relative_to(base) for pattern in globs for p in base.glob(pattern) if p.is_file()}
    return seeded_order(paths, seed)


def usable_image(source: Path) -> Image.Image | str:
    """The flattened, cropped source image, or why it cannot be used."""
    with warnings.catch_warnings():  # reading the header is safe; decoding is what we avoid
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(source) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                return "too large"
    image = flatten(open_image(source))
    return image if max(image.size) >= MIN_SIDE else "too small"


def build(plan: DatasetBuild) -> list[tuple[str, Path]]:
    """Write one dataset; returns (class, thumbnail path) pairs in order."""
    version = package_version(plan.package)
    root = DATASETS[plan.dataset].root
    out_dir = root.parent
    if out_dir.parent != PRECOMPUTED_DIR:
        sys.exit(f"refusing to clear {out_dir}: not a folder directly under {PRECOMPUTED_DIR}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    root.mkdir(parents=True)

    seen_hashes: set[str] = set()
    skipped: Counter[str] = Counter()
    written: list[tuple[str, Path]] = []
    sources: list[str] = []
    for spec in plan.classes:
        order = candidates(plan.base, spec.globs, f"{SEED}/{spec.name}")
        order += [
            p
            for p in candidates(plan.base, spec.fallback, f"{SEED}/{spec.name}/fallback")
            if p not in order
        ]
        taken = 0
        for rel in order:
            if taken == N_PER_CLASS:
                break
            source = plan.base / rel
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
            if str(rel) in plan.exclude:
                image = "excluded"
            elif is_variant(rel):
                image = "variant"
            elif digest in seen_hashes:
                image = "duplicate"
            else:
                image = usable_image(source)
            if isinstance(image, str):
                skipped[image] += 1
                continue
            seen_hashes.add(digest)
            dest = root / spec.name / f"{taken:03d}_{safe_name(rel.stem)}.jpg"
            save_thumbnail(image, dest)
            written.append((spec.name, dest))
            sources.append(f"{dest.relative_to(out_dir)} -> {source}")
            taken += 1
        if taken < N_PER_CLASS:
            sys.exit(
                f"{plan.dataset}/{spec.name}: only {taken} usable images of {len(order)} "
                f"candidates (skipped so far: {dict(skipped)}); add sources or relax excludes"
            )

    (out_dir / "SOURCES.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (out_dir / "NOTICE.txt").write_text(plan.notice.format(version=version), encoding="utf-8")
    shutil.copyfile(plan.licence_text, out_dir / "LICENSE.txt")
    size_kb = sum(path.stat().st_size for _, path in written) / 1024
    print(
        f"{plan.dataset}: wrote {len(written)} images in {len(plan.classes)} classes to "
        f"{root} ({size_kb:.0f} KiB) from {plan.package} {version}; "
        f"skipped {dict(sorted(skipped.items()))}; wrote SOURCES.txt, NOTICE.txt, LICENSE.txt"
    )
    return written


def contact_sheet(name: str, written: list[tuple[str, Path]], out: Path) -> None:
    """One row per class with its label, so off-topic or duplicate images stand out."""
    classes = list(dict.fromkeys(cls for cls, _ in written))
    label_w = 130
    sheet = Image.new(
        "RGB", (label_w + N_PER_CLASS * SHEET_THUMB, len(classes) * SHEET_THUMB), "white"
    )
    draw = ImageDraw.Draw(sheet)
    columns: Counter[str] = Counter()
    for cls, path in written:
        row, col = classes.index(cls), columns[cls]
        columns[cls] += 1
        with Image.open(path) as image:
            thumb = fit_thumbnail(image, SHEET_THUMB - 2)
        sheet.paste(thumb, (label_w + col * SHEET_THUMB + 1, row * SHEET_THUMB + 1))
        if col == 0:
            draw.text((4, row * SHEET_THUMB + SHEET_THUMB // 2 - 6), cls, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"{name}: contact sheet {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(BUILDS), help="datasets to build")
    parser.add_argument("--sheets", type=Path, help="also write contact_<name>.png here")
    args = parser.parse_args()
    for name in args.names:
        if name not in BUILDS:
            sys.exit(f"unknown dataset {name!r}; buildable: {', '.join(BUILDS)}")
        written = build(BUILDS[name])
        if args.sheets:
            contact_sheet(name, written, args.sheets / f"contact_{name}.png")


if __name__ == "__main__":
    main()
