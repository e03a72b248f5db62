/* What espeak-ng 724808c5 (the commit piper-tts 1.8 links) does differently
 * from the vendored d7b26b54 in phonemization, rebuilt on top of it:
 * - vivace_piper_ipa: the last translated clause written as IPA;
 * - vivace_piper_language_options: Hebrew's translator options.
 *
 * 1. Upstream 8afe77ba ("Avoid underflowing ph_list3") changed how a phoneme's
 * IPA name is looked up when the clause is written out: the phoneme program
 * is run with the phoneme itself as the start of the list, so every
 * condition on the phonemes before it (prevPh, prevPhW, prev2PhW, ...) is
 * false. In d7b26b54 those conditions see the real previous phonemes, and
 * some phonemes get another IPA symbol: English's linking glide and flap,
 * German and Romanian r, Telugu's glide, ...
 *
 * This file writes the clause with the d7b26b54 library's own
 * WritePhMnemonic, but hands it a copy of the phoneme list in which the two
 * entries before the phoneme are a neutral phoneme: no mnemonic, no flags,
 * an invalid type, a word start. Conditions on it are then false as they are
 * in 724808c5, with the exceptions written down in docs/PHONEMIZATION.md
 * (isNotVowel, isWordStart, isWordEnd and stress tests of the previous
 * phoneme are true or depend on the phoneme itself). The rest of the loop
 * is the output format of GetTranslatedPhonemeString in IPA mode without a
 * separator or tie, the mode Piper calls it in: a space before each word but
 * the first of a clause, a stress mark before a stressed syllable, then the
 * phoneme, its length mark, syllabic mark and tone.
 *
 * 2. 724808c5 gives Hebrew its own translator options (tr_languages.c), where
 * d7b26b54 has the defaults: "and" between tens and units and after
 * hundreds, two-digit decimal fractions, no automatic secondary stress, and a
 * final apostrophe kept in the word. Hebrew's language file sets none of
 * them, so setting them after the voice is selected gives the same
 * translator. (724808c5 also adds Aromanian, `rup`, which no Piper voice
 * uses; it is left out.) */

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <espeak-ng/encoding.h>

#include "phoneme.h"
#include "dictionary.h"
#include "translate.h"
#include "synthesize.h"

size_t vivace_piper_ipa(char *out, size_t capacity);
void vivace_piper_language_options(void);

/* Entries of neutral context written before each phoneme. */
#define CONTEXT 2
/* Entries after the end of the list that a phoneme program may look at. */
#define LOOKAHEAD 4

static PHONEME_TAB neutral_phoneme;
static PHONEME_LIST window[CONTEXT + N_PHONEME_LIST + 1];

/* Appends `text` at out[*len] when it fits; *len counts every byte anyway. */
static void append(char *out, size_t capacity, size_t *len, const char *text)
{
	size_t n = strlen(text);
	if (*len + n < capacity)
		memcpy(out + *len, text, n);
	*len += n;
}

/* phoneme_list[ix..] preceded by neutral entries: the context 724808c5 gives
 * a phoneme's program when writing its name. */
static PHONEME_LIST *context_for(int ix)
{
	int end = n_phoneme_list + LOOKAHEAD;
	if (end > N_PHONEME_LIST + 1)
		end = N_PHONEME_LIST + 1;
	neutral_phoneme.type = phINVALID;
	for (int i = 0; i < CONTEXT; i++) {
		memset(&window[i], 0, sizeof(window[i]));
		window[i].ph = &neutral_phoneme;
		window[i].sourceix = 1;
	}
	memcpy(&window[CONTEXT], &phoneme_list[ix], (size_t)(end - ix) * sizeof(PHONEME_LIST));
	return &window[CONTEXT];
}

/* The clause's IPA into `out` (NUL-terminated when it fits); returns its
 * length in bytes, so a caller whose buffer was too small can retry. */
size_t vivace_piper_ipa(char *out, size_t capacity)
{
	size_t len = 0;
	for (int ix = 1; ix < n_phoneme_list - 2; ix++) {
		PHONEME_LIST *plist = &phoneme_list[ix];
		PHONEME_LIST *context = context_for(ix);
		/* WritePhMnemonic writes at most an IPA name (N_PHONEME_DATA_IPA
		 * bytes at most) or a short mnemonic. */
		char name[64];
		char extra[64];
		int flags = 0;

		WritePhMnemonic(name, plist->ph, context, 1, &flags);
		if ((plist->newword & PHLIST_START_OF_WORD) &&
		    !(plist->newword & (PHLIST_START_OF_SENTENCE | PHLIST_START_OF_CLAUSE)))
			append(out, capacity, &len, " ");
		if ((plist->synthflags & SFLAG_SYLLABLE) && plist->stresslevel > 1) {
			int stress = plist->stresslevel;
			if (stress > STRESS_IS_PRIORITY)
				stress = STRESS_IS_PRIORITY;
			append(out, capacity, &len, stress > STRESS_IS_SECONDARY ? "\xcb\x88" : "\xcb\x8c");
		}
		append(out, capacity, &len, name);
		if (plist->ph->code != phonSWITCH) {
			if (plist->synthflags & SFLAG_LENGTHEN) {
				WritePhMnemonic(extra, phoneme_tab[phonLENGTHEN], context, 1, NULL);
				append(out, capacity, &len, extra);
			}
			if ((plist->synthflags & SFLAG_SYLLABLE) && plist->type != phVOWEL) {
				WritePhMnemonic(extra, phoneme_tab[phonSYLLABIC], context, 1, NULL);
				append(out, capacity, &len, extra);
			}
			if (plist->tone_ph > 0) {
				WritePhMnemonic(extra, phoneme_tab[plist->tone_ph], context, 1, NULL);
				append(out, capacity, &len, extra);
			}
		}
	}
	if (len < capacity)
		out[len] = 0;
	else if (capacity > 0)
		out[0] = 0;
	return len;
}

/* Applies 724808c5's options for the selected language's translator; call
 * after every voice selection. */
void vivace_piper_language_options(void)
{
	if (translator == NULL)
		return;
	if (translator->translator_name == L('h', 'e')) {
		translator->langopts.param[LOPT_APOSTROPHE] = 2;
		translator->langopts.stress_flags = S_NO_AUTO_2;
		translator->langopts.numbers = NUM_DFRACTION_2 | NUM_AND_UNITS | NUM_HUNDRED_AND | NUM_SINGLE_AND;
	}
}
